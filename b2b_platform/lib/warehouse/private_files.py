"""Files that hold personal data are the owner's only; the published reports are not.

The warehouse, its side files (WAL, spill files, the loaded-files state, a lake's
Parquet), warehouse exports and the reports while they are being written are created
under `private_umask()`: mode 0600 for files, 0700 for directories, whatever the
operator's umask. DuckDB creates some of them (the WAL, spill files) at any moment while
a connection is open, so the umask is held for as long as the connection is.

A umask belongs to the whole process, not to a thread: while any thread holds
`private_umask()`, every file the process creates is private. That errs on the safe
side; what is meant to be shared (the published reports) is given its mode explicitly,
from `shared_umask()`: the umask the process had outside any private section.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# group and others get nothing
PRIVATE_BITS = 0o077

_lock = threading.Lock()
_holders = 0
_outer_umask: int | None = None  # the umask before the first holder took it


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and directories the process creates meanwhile are readable by their owner
    only. Nests, and may be held by several threads at once: the operator's umask comes
    back when the last holder leaves."""
    global _holders, _outer_umask
    with _lock:
        if _holders == 0:
            _outer_umask = os.umask(PRIVATE_BITS)
            os.umask(_outer_umask | PRIVATE_BITS)  # keeps what the owner denied themself
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _outer_umask is not None:
                os.umask(_outer_umask)
                _outer_umask = None


def shared_umask() -> int:
    """The operator's umask: the process's own, outside any private section."""
    with _lock:
        if _outer_umask is not None:
            return _outer_umask
        current = os.umask(PRIVATE_BITS)  # the only way to read it is to set it
        os.umask(current)
        return current


def shared_file_mode() -> int:
    """The mode a new file gets under the operator's umask (0644 under umask 022)."""
    return 0o666 & ~shared_umask()


def shared_directory_mode() -> int:
    """The mode a new directory gets under the operator's umask (0755 under umask 022)."""
    return 0o777 & ~shared_umask()
