"""Scales, anomaly rates and the date range shared by the three simulators."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from b2b_common.dates import add_months


@dataclass(frozen=True)
class ScaleSpec:
    """How much of everything to simulate."""

    companies: int
    suppliers: int
    products: int
    customers: int
    users: int
    orders: int
    log_lines: int
    leads: int
    lead_files: int
    months: int  # calendar months ending with the as-of month
    # Customer documents and company CUITs drawn without chance repeats. The warehouse
    # merges customers with the same document: at 3M customers drawn from a 43M range, ~90k
    # chance repeats would outnumber the 60k injected duplicates. Off for the scales that
    # predate it so their data stays byte-identical for a seed (large keeps ~900 of them).
    distinct_ids: bool = False


SCALES: dict[str, ScaleSpec] = {
    "tiny": ScaleSpec(
        companies=60, suppliers=12, products=120, customers=400, users=150,
        orders=400, log_lines=6_000, leads=240, lead_files=4, months=4,
    ),
    "small": ScaleSpec(
        companies=2_000, suppliers=150, products=3_000, customers=20_000, users=6_000,
        orders=50_000, log_lines=1_000_000, leads=6_000, lead_files=12, months=13,
    ),
    "large": ScaleSpec(
        companies=20_000, suppliers=1_000, products=30_000, customers=300_000, users=60_000,
        orders=1_000_000, log_lines=10_000_000, leads=60_000, lead_files=24, months=13,
    ),
    # Orders are streamed to the database a month at a time (generators.platform).
    "xlarge": ScaleSpec(
        companies=200_000, suppliers=10_000, products=300_000, customers=3_000_000,
        users=600_000, orders=10_000_000, log_lines=100_000_000, leads=600_000, lead_files=24,
        months=13, distinct_ids=True,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class AnomalyRates:
    """Share of records that carry each injected defect (all detectable by the warehouse)."""

    # platform database
    invalid_cuit: float = 0.02  # company CUIT with a wrong check digit
    duplicate_cuit: float = 0.01  # a second company row with the same CUIT in another format
    duplicate_customer: float = 0.02  # same document typed differently (dots, spaces)
    implausible_birth_date: float = 0.01  # in the future or more than 120 years ago
    invalid_document: float = 0.005  # document number with letters or too few digits
    future_order: float = 0.002  # ordered_at after the as-of date
    out_of_range_order: float = 0.002  # ordered_at before the first simulated month
    invalid_status: float = 0.003  # status outside the known set
    messy_status: float = 0.05  # known status with stray case/whitespace (valid)
    unknown_company: float = 0.002  # order for a company id that does not exist
    unknown_customer: float = 0.002  # order for a customer id that does not exist
    non_positive_quantity: float = 0.004
    non_positive_price: float = 0.003
    unknown_product: float = 0.003  # order item for a product id that does not exist
    unknown_order: float = 0.002  # order item whose order does not exist
    # web logs
    malformed_line: float = 0.002  # every malformed-line kind the parser must survive, in turn
    # lead spreadsheets
    lead_duplicate: float = 0.05  # the same lead exported again in another file
    lead_missing_contact: float = 0.02  # neither email nor phone
    lead_invalid_email: float = 0.03
    lead_invalid_cuit: float = 0.03


@dataclass(frozen=True)
class GenerationConfig:
    """Everything that decides the simulated content: same config, same bytes."""

    scale: ScaleSpec
    seed: int = 42
    as_of: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())
    anomalies: AnomalyRates = field(default_factory=AnomalyRates)

    @property
    def first_day(self) -> dt.date:
        """First day of the first simulated month."""
        return add_months(self.as_of, 1 - self.scale.months)

    @property
    def first_month(self) -> str:
        """The first simulated month as YYYY-MM (what B2B_FIRST_MONTH should be)."""
        return self.first_day.strftime("%Y-%m")

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.first_day, dt.time(0), tzinfo=dt.UTC)

    @property
    def end(self) -> dt.datetime:
        """End of the as-of day (exclusive), UTC."""
        return dt.datetime.combine(self.as_of + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
