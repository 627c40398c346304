"""What a `pytest` run builds once for all its xdist workers: the first worker to ask
builds, the others wait for it and use what it built (each test still works on a copy of
its own where it writes)."""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

# PostgreSQL databases made once per run (a template lake's catalog), listed in this file
# of the shared root by whoever made them, dropped when the whole run ends (conftest)
DROP_DATABASES = "drop-databases.txt"

T = TypeVar("T")


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of this `pytest` run that every xdist worker sees (each worker's
    base temp is a folder of it); without xdist, the base temp itself."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(
    tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], T]
) -> T:
    """`make(directory)` run by the first worker to ask, in a directory of the run's
    shared root; the others wait for it and get its (pickled) result. A failure is not
    kept: the next worker to ask tries again, and fails the same way, in its own tests."""
    directory = shared_root(tmp_path_factory) / name
    with (shared_root(tmp_path_factory) / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        done = directory / ".result.pickle"
        if done.exists():
            return pickle.loads(done.read_bytes())
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        result = make(directory)
        done.write_bytes(pickle.dumps(result))
        return result
