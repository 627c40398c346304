"""Whether the process that left a record (a step, a run) is still there."""

from __future__ import annotations

import os
import socket


def this_process() -> str:
    """`host:pid`, as runs and steps record who runs them."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_alive(pid: int | None, hostname: str | None) -> bool:
    """Whether a process still runs. One on another host cannot be seen from here and is
    taken as alive: the run-failure sensor and run monitoring record its end."""
    if hostname != socket.gethostname():
        return True
    if pid is None:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
