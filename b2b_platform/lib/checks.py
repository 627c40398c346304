"""Data-quality checks run inside the materializing step, on the slice just written.

A check is declared once, as a `Check`: the spec an asset declares and the result its
step yields both come from that object, so a name, a description or a blocking flag
cannot differ between the two.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import dagster as dg
import duckdb

from b2b_platform.lib.warehouse.schema import scalar
from b2b_platform.lib.warehouse.sql import (
    SqlFragment,
    any_null,
    expression_list,
    identifier_list,
    qualified_name,
    quote_identifier,
)

ALL_ROWS = "TRUE"  # the condition of a check on a whole table


@dataclass(frozen=True)
class Check:
    """One data-quality check: its name, what it asserts, and whether a failure blocks
    the slice from being published (a blocking failure rolls the write back)."""

    name: str
    description: str
    blocking: bool = True

    def spec(self, asset_key: dg.AssetKey, reads: Sequence[dg.AssetKey] = ()) -> dg.AssetCheckSpec:
        """The check on `asset_key`; `reads` are other assets the check looks in (a
        reference resolved in a dimension) without the asset being built from them."""
        return dg.AssetCheckSpec(
            self.name,
            asset=asset_key,
            description=self.description,
            blocking=self.blocking,
            additional_deps=list(reads),
        )

    def result(
        self, asset_key: dg.AssetKey, passed: bool, metadata: Mapping[str, Any]
    ) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            asset_key=asset_key, check_name=self.name, passed=passed, metadata=dict(metadata)
        )

    def described(self, description: str) -> Check:
        """The same check, explained for one layer's tables."""
        return replace(self, description=description)


# The checks many assets share; each asset declares them with .spec(key).
UNIQUE_KEY = Check("unique_key", "The business key is unique and never null.")
ACCOUNTING_IDENTITY = Check(
    "accounting_identity", "Records read = loaded + rejected + merged (nothing vanishes)."
)
NO_PII = Check(
    "no_pii_columns",
    "No raw personal-data column (document, birth date, email, phone, name, username, IP)"
    " and no value shaped like one reaches an analyst-facing table.",
)


MANIFEST_CONSISTENT = Check(
    "manifest_consistent", "No file loaded twice; no rows without a loaded manifest entry."
)


def reject_rate(entity: str, description: str, blocking: bool = False) -> Check:
    """`<entity>_reject_rate`: the share of an entity's records the step rejected."""
    return Check(f"{entity}_reject_rate", description, blocking=blocking)


def unique_key(
    conn: duckdb.DuckDBPyConnection,
    asset_key: dg.AssetKey,
    table: str,
    key: Sequence[str],
    where: SqlFragment | None = None,
    params: Sequence[Any] = (),
    check: Check = UNIQUE_KEY,
) -> dg.AssetCheckResult:
    if not where:
        where = ALL_ROWS
    cols = identifier_list(key)
    relation = qualified_name(table)
    # One scan (a view's month is computed once): GROUP BY puts the rows with the same
    # key, NULLs included, in one group, and the group's key says if they have a null.
    duplicates, nulls = conn.execute(
        "SELECT count(*) FILTER (WHERE n > 1), coalesce(sum(n) FILTER (WHERE has_null), 0)"
        f" FROM (SELECT count(*) AS n, {any_null(key)} AS has_null FROM {relation}"
        f" WHERE {where} GROUP BY {cols})",
        list(params),
    ).fetchone()  # type: ignore[misc]
    return check.result(
        asset_key,
        passed=duplicates == 0 and nulls == 0,
        metadata={
            "key": ", ".join(key),
            "duplicate_keys": int(duplicates),
            "null_keys": int(nulls),
        },
    )


def references_resolve(
    conn: duckdb.DuckDBPyConnection,
    asset_key: dg.AssetKey,
    check: Check,
    table: str,
    column: str,
    ref_table: str,
    ref_column: str,
    where: SqlFragment | None = None,
    params: Sequence[Any] = (),
) -> dg.AssetCheckResult:
    """Every non-null `column` value exists in `ref_table.ref_column`."""
    if not where:
        where = ALL_ROWS
    relation, references = qualified_name(table), qualified_name(ref_table)
    value = quote_identifier(column)
    ref = quote_identifier(ref_column)
    dangling = scalar(
        conn,
        f"SELECT count(*) FROM {relation} t WHERE t.{value} IS NOT NULL"
        f" AND NOT EXISTS (SELECT 1 FROM {references} r WHERE r.{ref} = t.{value})"
        f" AND {where}",
        params,
    )
    return check.result(
        asset_key,
        passed=dangling == 0,
        metadata={
            "reference": f"{table}.{column} -> {ref_table}.{ref_column}",
            "dangling": int(dangling),
        },
    )


def accounting_holds(
    conn: duckdb.DuckDBPyConnection,
    asset_key: dg.AssetKey,
    source: str,
    entities: Sequence[str],
    partition_key: str | None,
    check: Check = ACCOUNTING_IDENTITY,
    *,
    orphans: bool = False,
) -> dg.AssetCheckResult:
    """records read = loaded + rejected + merged, for every entity this step accounts for
    (with `orphans`, also for its records that belong to no month, accounted apart)."""
    rows = conn.execute(
        "SELECT entity, partition_key, rows_read, rows_loaded, rows_rejected, rows_merged"
        " FROM etl.record_accounting WHERE source = ? AND list_contains(?, entity)"
        " AND (partition_key IS NOT DISTINCT FROM ? OR (? AND partition_key IS NULL))",
        [source, list(entities), partition_key, orphans],
    ).fetchall()
    broken = {e: (r, lo, rej, m) for e, _, r, lo, rej, m in rows if r != lo + rej + m}
    missing = sorted(set(entities) - {r[0] for r in rows if r[1] == partition_key})
    return check.result(
        asset_key,
        passed=not broken and not missing,
        metadata={
            "entities": ", ".join(entities),
            "read_loaded_rejected_merged": {
                r[0] + ("" if r[1] == partition_key else " (no month)"): [int(x) for x in r[2:]]
                for r in rows
            },
            "missing_entities": ", ".join(missing),
        },
    )


# Rejected for when they fall, not for what they hold: a record dated after the load
# time or outside the loaded range is filed under the first or last month only because
# no partition covers its date, so it says nothing about that month's data.
DATE_PLACEMENT_REASONS = ("future_order", "future_request", "out_of_range")
# How sure a reject-rate gate must be before it blocks: it judges at least
# MIN_JUDGED_RECORDS records, and the lower end of the two-sided 95% Wilson score
# interval of their share of rejects exceeds the threshold. A month of a few days (or a
# source of a few rows) is judged on too few records for its observed share to mean
# much: 3 rejects in 20 records (15%) does not block, nor 10.4% of 2,879 (at least 9.4%),
# while 11.4% of 2,879 (at least 10.3%) does at 10%.
CONFIDENCE_Z = 1.96
MIN_JUDGED_RECORDS = 30


def rate_lower_bound(rejected: int, judged: int, z: float = CONFIDENCE_Z) -> float:
    """The lower end of the Wilson score interval of rejected / judged (0 when none judged)."""
    if judged <= 0:
        return 0.0
    share = rejected / judged
    spread = z * z / judged
    centre = share + spread / 2
    margin = z * math.sqrt(share * (1 - share) / judged + spread / (4 * judged))
    return max(0.0, (centre - margin) / (1 + spread))


def reject_rate_below(
    conn: duckdb.DuckDBPyConnection,
    asset_key: dg.AssetKey,
    source: str,
    entity: str,
    partition_key: str | None,
    threshold: float,
    check: Check,
) -> dg.AssetCheckResult:
    """The share of the slice's records rejected for their content stays under threshold,
    as far as the records can tell (see CONFIDENCE_Z). (The accounting entity keeps the
    source's name, e.g. order_items for the staging/order_lines asset, whose check is
    order_lines_reject_rate.)

    Records rejected only for their date (DATE_PLACEMENT_REASONS) leave both sides of the
    share: otherwise the last month, partial and holding every future-dated record, would
    fail early in each month while nothing is wrong with its data. Records that belong to
    no month (order lines without an order) are accounted under no partition at all, so
    they never reach a month's share.
    """
    rows = conn.execute(
        "SELECT rows_read, rows_rejected FROM etl.record_accounting"
        " WHERE source = ? AND entity = ? AND partition_key IS NOT DISTINCT FROM ?",
        [source, entity, partition_key],
    ).fetchall()
    read, rejected = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
    misdated = int(
        scalar(
            conn,
            "SELECT count(DISTINCT record_key) FROM quarantine.rejected_records"
            " WHERE source = ? AND entity = ? AND partition_key IS NOT DISTINCT FROM ?"
            " AND action = 'rejected' AND list_contains(?, reason_code)",
            [source, entity, partition_key, list(DATE_PLACEMENT_REASONS)],
        )
    )
    misdated = min(misdated, rejected)
    judged = read - misdated
    bad = rejected - misdated
    rate = bad / judged if judged else 0.0
    lower = rate_lower_bound(bad, judged)
    passed = judged < MIN_JUDGED_RECORDS or lower <= threshold
    noun = entity.replace("_", " ")
    summary = f"{rate:.1%} of {judged:,} {noun} rejected {'>' if rate > threshold else '<='}"
    summary += f" {threshold:.1%}"
    if not passed:
        summary += f" (at least {lower:.1%} at 95% confidence)"
    elif rate > threshold:  # over, but on too little to be sure
        summary += f" on too few records to block (at least {lower:.1%} at 95% confidence)"
    return check.result(
        asset_key,
        passed=passed,
        metadata={
            "summary": dg.MetadataValue.text(summary),
            # percentages as people read them; the number (in percent) is what the UI plots
            "reject_rate": dg.MetadataValue.text(f"{rate:.2%}"),
            "reject_rate_lower_bound": dg.MetadataValue.text(f"{lower:.2%}"),
            "threshold": dg.MetadataValue.text(f"{threshold:.1%}"),
            "reject_rate_pct": round(rate * 100, 3),
            "rows_read": read,
            "rows_rejected": rejected,
            "rows_rejected_for_date": misdated,
            "rows_judged": judged,
        },
    )


def combine_months(
    results: Sequence[tuple[str, dg.AssetCheckResult]], held: Collection[str] = ()
) -> list[dg.AssetCheckResult]:
    """One result per check for a run over several months: passes only if every month did.

    A check that failed only in `held` months (a blocking check stopped them, and the step
    published the others) is reported with WARN severity: the hold was applied month by
    month when those slices were not published, so it need not fail the whole step and
    with it every other month's children.
    """
    grouped: dict[tuple[Any, str], list[tuple[str, dg.AssetCheckResult]]] = {}
    for month, result in results:
        grouped.setdefault((result.asset_key, result.check_name), []).append((month, result))
    combined = []
    for (asset_key, check_name), items in grouped.items():
        failed = [(m, r) for m, r in items if not r.passed]
        shown = failed[0][1] if failed else items[-1][1]
        metadata = {k: v.value if hasattr(v, "value") else v for k, v in shown.metadata.items()}
        only_held = bool(failed) and all(m in held for m, _ in failed)
        combined.append(
            dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=check_name,
                passed=not failed,
                severity=dg.AssetCheckSeverity.WARN if only_held else dg.AssetCheckSeverity.ERROR,
                metadata={
                    **metadata,
                    "months_checked": len(items),
                    "failed_months": ", ".join(m[:7] for m, _ in failed) or "none",
                    **({"held_months": ", ".join(m[:7] for m, _ in failed)} if only_held else {}),
                },
            )
        )
    return combined


# Column names that carry personal data; core and reports hold keys and hashes instead.
PII_COLUMNS = frozenset(
    {"document_number", "date_of_birth", "birth_date", "email", "phone", "full_name",
     "contact_name", "username", "client_ip"}
)  # fmt: skip


# Values that are personal data whatever their column is called, as the source holds
# them: an email, a document number as typed (7-8 digits, dots or spaces), a phone (10+
# digits), a person's CUIT in clear (prefix 20, 23, 24 or 27).
PII_VALUE_PATTERNS: dict[str, str] = {
    "email": r"[^@\s]+@[^@\s]+\.[^@\s]+",
    "document": r"[0-9]{1,2}[. ]?[0-9]{3}[. ]?[0-9]{3}",
    # written as a phone: a "+" or separators, and 10+ digits (PHONE_MIN_DIGITS); bare
    # digits are ids, and a company CUIT's NN-NNNNNNNN-N has no other separator
    "phone": r"\+[0-9 ().-]{9,}[0-9]|[0-9(][0-9 ().-]*[ ()][0-9 ().-]*[0-9]",
    "personal_cuit": r"(20|23|24|27)-?[0-9]{8}-?[0-9]",
}
PHONE_MIN_DIGITS = 10
# values are scanned on the first rows of a large slice: a leak is a column, not one
# row, and the first 10,000 rows show it as surely as a year of them
PII_SAMPLE_ROWS = 10_000


def no_pii_columns(
    conn: duckdb.DuckDBPyConnection,
    asset_key: dg.AssetKey,
    table: str,
    where: SqlFragment | None = None,
    params: Sequence[Any] = (),
    check: Check = NO_PII,
) -> dg.AssetCheckResult:
    """No personal data reaches an analyst-facing table: no column named like it, and no
    text value shaped like it (checked on the first PII_SAMPLE_ROWS rows of the slice
    `where` selects, of the whole table without it)."""
    if not where:
        where = ALL_ROWS
    relation = qualified_name(table)
    described = conn.execute(f"DESCRIBE {relation}").fetchall()
    columns = [row[0] for row in described]
    found = sorted(c for c in columns if c.lower() in PII_COLUMNS)
    texts = [row[0] for row in described if row[1] == "VARCHAR"]
    leaks: dict[str, int] = {}
    if texts:
        names = [f"{column}/{kind}" for column in texts for kind in PII_VALUE_PATTERNS]
        # the digits are counted only where the pattern matched (CASE runs its branch on
        # those rows alone; AND counted them on every row: 17x slower on user agents)
        counts = expression_list(
            f"count(*) FILTER (WHERE CASE WHEN regexp_full_match(trim({quote_identifier(column)}), ?)"
            f" THEN length(regexp_replace({quote_identifier(column)}, '[^0-9]', '', 'g')) >= ?"
            " ELSE false END)"
            for column in texts
            for _ in PII_VALUE_PATTERNS
        )
        patterns = [
            value
            for _ in texts
            for kind, pattern in PII_VALUE_PATTERNS.items()
            for value in (pattern, PHONE_MIN_DIGITS if kind == "phone" else 0)
        ]
        # a LIMIT stops the scan early, a view's too (a sample of a view computes it all)
        row = conn.execute(
            f"SELECT {counts} FROM (SELECT * FROM {relation} WHERE {where} LIMIT ?)",
            [*patterns, *params, PII_SAMPLE_ROWS],
        ).fetchone()
        leaks = {name: int(count) for name, count in zip(names, row or (), strict=True) if count}
    return check.result(
        asset_key,
        passed=not found and not leaks,
        metadata={
            "pii_columns": ", ".join(found) or "none",
            "columns_checked": len(columns),
            "pii_values": ", ".join(f"{name} ({count})" for name, count in leaks.items()) or "none",
        },
    )
