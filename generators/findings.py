"""What the warehouse will find in the generated sources: quarantine records by source,
entity, reason and action, worked out from the generated rows by the data contract's
rules (not by running the warehouse's SQL, so a test that compares the two checks both).

The rules that make "found" differ from "injected":
- the load cut-off is the end of the as-of day (UTC): log lines of the as-of evening,
  server time, are already the next day in UTC;
- customers with the same document (after removing dots, spaces and leading zeros) are
  merged, whether a duplicate was planted or the random draw repeated a number; invalid
  documents are never merged;
- an order is rejected for its first failing rule (timestamp, future, before the first
  month, status, company, customer), and its lines go with it, under the order's reason;
  a line of a valid order is rejected for its own first failing rule.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import polars as pl

from b2b_common.orders import VALID_STATUSES
from generators.config import GenerationConfig
from generators.platform import PlatformData

Finding = tuple[str, str, str, str]  # source, entity, reason_code, action
NUMERIC_DOCUMENTS = ["DNI", "LC", "LE", "CI"]


def load_cutoff(config: GenerationConfig) -> dt.datetime:
    """The end of the as-of day, as B2B_AS_OF set to it (or a run after the day) uses."""
    return dt.datetime.combine(config.as_of + dt.timedelta(days=1), dt.time(0))


def customer_findings(customers: pl.DataFrame, as_of: dt.date) -> Counter[Finding]:
    doc_type = pl.col("document_type").str.strip_chars().str.to_uppercase()
    clean = (
        pl.col("document_number")
        .str.strip_chars()
        .str.replace_all(r"[\s.\-]", "")
        .str.to_uppercase()
    )
    checked = (
        customers.with_columns(doc_type=doc_type, clean=clean)
        .with_columns(
            norm=pl.when(pl.col("doc_type").is_in(NUMERIC_DOCUMENTS))
            .then(pl.col("clean").str.strip_chars_start("0").replace("", None))
            .otherwise(pl.col("clean"))
        )
        .with_columns(
            doc_ok=pl.when(pl.col("doc_type").is_in(["DNI", "LC", "LE"]))
            .then(pl.col("norm").str.contains(r"^[0-9]{6,8}$"))
            .when(pl.col("doc_type") == "CI")
            .then(pl.col("norm").str.contains(r"^[0-9]{5,9}$"))
            .when(pl.col("doc_type") == "PASAPORTE")
            .then(pl.col("norm").str.contains(r"^[A-Z0-9]{6,10}$"))
            .otherwise(False)
            .fill_null(False),
            implausible=(
                (pl.col("date_of_birth") > as_of)
                | (pl.col("date_of_birth") < _years_before(as_of, 120))
            ).fill_null(False),
        )
        .with_columns(
            survivor=pl.when(pl.col("doc_ok"))
            .then(pl.col("customer_id").min().over("doc_type", "norm"))
            .otherwise(pl.col("customer_id"))
        )
    )
    kept = checked.filter(pl.col("survivor") == pl.col("customer_id"))
    return Counter(
        {
            ("platform_db", "customers", "invalid_document", "flagged"): kept.filter(
                ~pl.col("doc_ok")
            ).height,
            ("platform_db", "customers", "implausible_birth_date", "flagged"): kept.filter(
                pl.col("implausible")
            ).height,
            ("platform_db", "customers", "duplicate_customer", "merged"): checked.height
            - kept.height,
        }
    )


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def order_findings(
    platform: PlatformData, first_month: dt.date, cutoff: dt.datetime
) -> Counter[Finding] | None:
    """Orders and their lines, or None when the orders were streamed to the database and
    only some of their columns were kept in memory (the xlarge scale)."""
    orders, items = platform.tables["orders"], platform.tables["order_items"]
    needed = {"customer_id", "quantity", "unit_price"}
    if not needed <= set(orders.columns) | set(items.columns):
        return None
    companies = platform.tables["companies"]["company_id"].implode()
    customers = platform.tables["customers"]["customer_id"].implode()
    status = pl.col("status").str.strip_chars().str.to_lowercase()
    reason = (
        pl.when(pl.col("ordered_at").is_null())
        .then(pl.lit("invalid_timestamp"))
        .when(pl.col("ordered_at") >= cutoff)
        .then(pl.lit("future_order"))
        .when(pl.col("ordered_at") < dt.datetime.combine(first_month, dt.time(0)))
        .then(pl.lit("out_of_range"))
        .when(~status.is_in(list(VALID_STATUSES)).fill_null(False))
        .then(pl.lit("invalid_status"))
        .when(~pl.col("company_id").is_in(companies))
        .then(pl.lit("unknown_company"))
        .when(~pl.col("customer_id").is_in(customers))
        .then(pl.lit("unknown_customer"))
    )
    checked = orders.select("order_id", reason=reason)
    products = platform.tables["products"]["product_id"].implode()
    lines = items.join(checked, on="order_id", how="left").select(
        reason=pl.when(~pl.col("order_id").is_in(checked["order_id"].implode()))
        .then(pl.lit("unknown_order"))
        .when(pl.col("reason").is_not_null())
        .then(pl.col("reason"))
        .when(~pl.col("product_id").is_in(products))
        .then(pl.lit("unknown_product"))
        .when(pl.col("quantity") <= 0)
        .then(pl.lit("non_positive_quantity"))
        .when(pl.col("unit_price").is_null() | (pl.col("unit_price") <= 0))
        .then(pl.lit("non_positive_price"))
    )
    found: Counter[Finding] = Counter()
    for entity, frame in (("orders", checked), ("order_items", lines)):
        for code, count in frame.drop_nulls("reason").group_by("reason").len().iter_rows():
            found["platform_db", entity, code, "rejected"] += count
    return found


def expected_findings(
    config: GenerationConfig,
    platform: PlatformData,
    log_rejects: dict[str, int],
    lead_anomalies: dict[str, int],
) -> Counter[Finding]:
    """Every quarantine count the warehouse will show after loading these sources with
    B2B_AS_OF set to the as-of day and B2B_FIRST_MONTH to the first generated month."""
    injected = platform.injected
    found: Counter[Finding] = Counter(
        {
            ("platform_db", "companies", "invalid_cuit", "flagged"): injected["invalid_cuit"],
            ("platform_db", "companies", "duplicate_cuit", "merged"): injected["duplicate_cuit"],
        }
    )
    found += customer_findings(platform.tables["customers"], config.as_of)
    orders = order_findings(platform, config.first_day, load_cutoff(config))
    if orders is None:  # streamed: what was planted, each detectable
        orders = Counter(
            {("platform_db", "orders", k.removesuffix("_order") if k == "out_of_range_order"
              else k, "rejected"): injected[k]
             for k in ("future_order", "out_of_range_order", "invalid_status",
                       "unknown_company", "unknown_customer")}
        )  # fmt: skip
    found += orders
    found += Counter(
        {("weblogs", "log_lines", code, "rejected"): n for code, n in log_rejects.items()}
    )
    actions = {"duplicate_lead": "merged", "missing_contact": "rejected"}
    found += Counter(
        {
            ("leads", "leads", code, actions.get(code, "flagged")): n
            for code, n in lead_anomalies.items()
        }
    )
    return +found  # without zero counts
