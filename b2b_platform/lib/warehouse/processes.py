"""Processes on this host as records name them: whether the one that left a record (a
step, a run) is still there, and what a process holding the warehouse runs."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psutil


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
    try:
        # a killed process its parent has not reaped yet is a zombie: gone, for a record
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # alive, another user's
        return True


def process_command(pid: int) -> str | None:
    """The first words of a process's command line ("b2b run"), None when it cannot be
    read (gone, or another user's)."""
    try:
        argv = psutil.Process(pid).cmdline()
    except psutil.Error:
        return None
    words = [Path(a).name for a in argv[:3] if a]
    return " ".join(words)[:80] or None
