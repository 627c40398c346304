"""What a run of the simulator wrote, and what the warehouse will make of it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeblogSummary:
    """What was written. ``malformed_lines`` counts every injected edge case by kind,
    including the valid real-world ones (see MALFORMED_KINDS / REJECTED_KINDS)."""

    files: int
    lines: int
    malformed_lines: dict[str, int]
    bytes_written: int
    events_out_of_range: int = 0  # session events before the first or after the last day
    # parseable lines of the as-of evening that are already the next day in UTC: a load
    # whose cut-off is the end of the as-of day (UTC) quarantines them as future requests
    lines_after_cutoff: int = 0

    @property
    def rejected_lines(self) -> dict[str, int]:
        """The quarantine reasons the warehouse will give, with their line counts."""
        kinds = self.malformed_lines
        found = {
            "unparseable_line": kinds.get("truncated", 0) + kinds.get("blank", 0),
            "invalid_timestamp": kinds.get("invalid_timestamp", 0),
            "future_request": self.lines_after_cutoff,
        }
        return {code: n for code, n in found.items() if n}

    @property
    def injected_edge_cases(self) -> dict[str, int]:
        return self.malformed_lines
