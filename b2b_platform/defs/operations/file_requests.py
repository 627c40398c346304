"""A file sensor's memory: which file versions are done, asked for, or failed.

The cursor advances only on success. A tick first looks up the runs it asked for:
a run that succeeded makes its files' versions `known`; one that failed or was
canceled puts them in `failed`, to be asked for again after a back-off (5 minutes,
doubling, at most an hour); one still queued or running keeps them `requested`, so
the same change is never asked for twice. Files the warehouse itself reports as read
(the loaded-files state, written by every step that loads files, `b2b run` included)
count as known too, so a file `b2b run` loaded does not start a run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

RETRY_FIRST_SECONDS = 300
RETRY_MAX_SECONDS = 3600
# a request whose run never appeared (the daemon died before launching it) is retried
LOST_AFTER_SECONDS = 600
REMOVED = "removed"

SUCCESS, FAILED, WAITING, MISSING = "success", "failed", "waiting", "missing"


@dataclass
class FileRequests:
    known: dict[str, str] = field(default_factory=dict)  # path -> version loaded
    # run key -> {"files": {path: version}, "at": iso time, "attempt": n}
    requested: dict[str, dict[str, Any]] = field(default_factory=dict)
    # path -> {"version": v, "attempt": n, "retry_at": iso time}
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> FileRequests | None:
        if not cursor:
            return None
        state = json.loads(cursor)
        if "known" not in state:  # an older cursor: path -> version, all counted as loaded
            return cls(known={str(k): str(v) for k, v in state.items()})
        return cls(known=state["known"], requested=state["requested"], failed=state["failed"])

    def to_cursor(self) -> str:
        state = {"known": self.known, "requested": self.requested, "failed": self.failed}
        return json.dumps(state, sort_keys=True)

    def settle_runs(self, run_status: Callable[[str], str], now: dt.datetime) -> list[str]:
        """Move the files of finished runs to known (success) or failed; returns a note
        per finished run for the tick's log."""
        notes = []
        for key, request in list(self.requested.items()):
            status = run_status(key)
            age = (now - dt.datetime.fromisoformat(request["at"])).total_seconds()
            if status == MISSING and age > LOST_AFTER_SECONDS:
                status = FAILED
            if status == SUCCESS:
                for path, version in request["files"].items():
                    if version == REMOVED:
                        self.known.pop(path, None)
                    else:
                        self.known[path] = version
                    self.failed.pop(path, None)
                notes.append(f"{key} succeeded")
            elif status == FAILED:
                attempt = int(request.get("attempt", 1))
                delay = min(RETRY_FIRST_SECONDS * 2 ** (attempt - 1), RETRY_MAX_SECONDS)
                retry_at = (now + dt.timedelta(seconds=delay)).isoformat()
                for path, version in request["files"].items():
                    self.failed[path] = {"version": version, "attempt": attempt,
                                         "retry_at": retry_at}  # fmt: skip
                notes.append(f"{key} failed: its files are asked for again after {delay} s")
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

    def changes(
        self, current: Mapping[str, str], writing: set[str], now: dt.datetime
    ) -> dict[str, tuple[str, int]]:
        """path -> (new version or "removed", attempt) for what to ask for now: new,
        changed or removed since known, not already asked for, not waiting to retry."""
        in_flight: dict[str, str] = {}
        for request in self.requested.values():
            in_flight.update(request["files"])
        baseline = {**self.known, **in_flight}
        wanted: dict[str, str] = {
            path: version for path, version in current.items() if baseline.get(path) != version
        }
        for path in set(baseline) - set(current) - writing:
            if baseline[path] != REMOVED:
                wanted[path] = REMOVED
        due: dict[str, tuple[str, int]] = {}
        for path, version in wanted.items():
            failure = self.failed.get(path)
            if failure and failure["version"] == version:
                if now < dt.datetime.fromisoformat(failure["retry_at"]):
                    continue
                due[path] = (version, int(failure["attempt"]) + 1)
            else:
                due[path] = (version, 1)
        return due

    def add_request(
        self, key: str, files: Mapping[str, str], attempt: int, now: dt.datetime
    ) -> None:
        self.requested[key] = {"files": dict(files), "at": now.isoformat(), "attempt": attempt}

    def retry_waiting(self, now: dt.datetime) -> int:
        return sum(
            1 for f in self.failed.values() if now < dt.datetime.fromisoformat(f["retry_at"])
        )


def run_key(prefix: str, changes: Mapping[str, str], attempt: int = 1) -> str:
    """One key per set of file versions (and retry): the same change never runs twice."""
    digest = hashlib.blake2b(
        json.dumps(sorted(changes.items())).encode(), digest_size=12
    ).hexdigest()
    return f"{prefix}:{digest}" + (f":retry-{attempt - 1}" if attempt > 1 else "")
