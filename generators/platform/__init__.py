"""Simulated B2B platform database: companies, catalogue, customers, users, orders.

Faker builds small pools of names; every bulk column is drawn with numpy and
assembled with polars, so a million orders cost seconds, not minutes. Anomalies
listed in the README are injected at the configured rates and every one stays detectable.

Above STREAM_ABOVE_ORDERS orders (the xlarge scale) orders and their lines are built a
month at a time and handed to a sink (the source database) as they are made, so memory
stays that of one month. Smaller scales build them in one go, with the random stream
they always had, so their data stays byte-identical for a seed.

Modules, in the order their tables are drawn: companies (and suppliers), catalogue,
customers, users, orders, order_items; columns holds the column builders they share and
simulator puts them together (patch STREAM_ABOVE_ORDERS there).
"""

from generators.platform.simulator import (
    KEPT_ITEM_COLUMNS,
    KEPT_ORDER_COLUMNS,
    STREAM_ABOVE_ORDERS,
    PlatformData,
    TableSink,
    generate_platform,
)

__all__ = [
    "KEPT_ITEM_COLUMNS",
    "KEPT_ORDER_COLUMNS",
    "STREAM_ABOVE_ORDERS",
    "PlatformData",
    "TableSink",
    "generate_platform",
]
