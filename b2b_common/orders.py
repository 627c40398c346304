"""What an order's status may be, as the source contract lists it (after trim and lower)."""

VALID_STATUSES: tuple[str, ...] = (
    "placed",
    "paid",
    "shipped",
    "delivered",
    "cancelled",
    "returned",
)
