"""A file sensor's memory: which file versions are done, and which were asked for.

A tick first looks up the runs it asked for. A run that ended makes its files' versions
`known`, whether it succeeded or failed: retrying is Dagster's work, not the sensor's
(each raw step's retry policy retries a failing read with an exponential back-off, and
the deployment's run retries relaunch a run whose process died), so a file that still
fails after them waits for a change, the daily refresh or `b2b run`. A run still queued
or running keeps its files `requested`, so the same change is never asked for twice; a
request whose run never appeared (the daemon died before launching it) is dropped after
LOST_AFTER_SECONDS and asked for again. Files the warehouse itself reports as read (the
loaded-files state, written by every step that loads files, `b2b run` included) count
as known too, so a file `b2b run` loaded does not start a run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# a request whose run never appeared (the daemon died before launching it) is retried
LOST_AFTER_SECONDS = 600
REMOVED = "removed"

SUCCESS, FAILED, WAITING, MISSING = "success", "failed", "waiting", "missing"


@dataclass
class FileRequests:
    known: dict[str, str] = field(default_factory=dict)  # path -> version read
    # run key -> {"files": {path: version}, "at": iso time}
    requested: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> FileRequests | None:
        if not cursor:
            return None
        state = json.loads(cursor)
        if "known" not in state:  # an older cursor: path -> version, all counted as loaded
            return cls(known={str(k): str(v) for k, v in state.items()})
        # an older cursor's back-off state ("failed") is not carried: those files are
        # asked for once more
        return cls(known=state["known"], requested=state["requested"])

    def to_cursor(self) -> str:
        return json.dumps({"known": self.known, "requested": self.requested}, sort_keys=True)

    def settle_runs(self, run_status: Callable[[str], str], now: dt.datetime) -> list[str]:
        """Move the files of finished runs to known; drop the requests whose run never
        appeared; returns a note per finished run for the tick's log."""
        notes = []
        for key, request in list(self.requested.items()):
            status = run_status(key)
            age = (now - dt.datetime.fromisoformat(request["at"])).total_seconds()
            if status == MISSING and age > LOST_AFTER_SECONDS:
                notes.append(f"{key} never started: its files are asked for again")
            elif status in (SUCCESS, FAILED):
                for path, version in request["files"].items():
                    if version == REMOVED:
                        self.known.pop(path, None)
                    else:
                        self.known[path] = version
                notes.append(
                    f"{key} succeeded"
                    if status == SUCCESS
                    else f"{key} failed (after"
                    " Dagster's retries): its files are asked for again when they change"
                )
            else:
                continue
            del self.requested[key]
        return notes

    def learn_loaded(self, loaded: Mapping[str, str] | None, current: Mapping[str, str]) -> None:
        """Count as known what the warehouse reports read at the version now on disk, and
        forget removed files it no longer holds (whoever loaded or removed them)."""
        if loaded is None:
            return
        for path, version in current.items():
            if loaded.get(path) == version:
                self.known[path] = version
        for path in set(self.known) - set(current) - set(loaded):
            self.known.pop(path)

    def changes(self, current: Mapping[str, str], writing: set[str]) -> dict[str, str]:
        """path -> new version (or "removed") of what to ask for now: new, changed or
        removed since known, and not already asked for."""
        in_flight: dict[str, str] = {}
        for request in self.requested.values():
            in_flight.update(request["files"])
        baseline = {**self.known, **in_flight}
        wanted = {
            path: version for path, version in current.items() if baseline.get(path) != version
        }
        for path in set(baseline) - set(current) - writing:
            if baseline[path] != REMOVED:
                wanted[path] = REMOVED
        return wanted

    def add_request(self, key: str, files: Mapping[str, str], now: dt.datetime) -> None:
        self.requested[key] = {"files": dict(files), "at": now.isoformat()}


def run_key(prefix: str, changes: Mapping[str, str]) -> str:
    """One key per set of file versions: Dagster never runs the same change twice."""
    digest = hashlib.blake2b(
        json.dumps(sorted(changes.items())).encode(), digest_size=12
    ).hexdigest()
    return f"{prefix}:{digest}"
