"""Replace the report directory's files together, never half.

The files of one export replace the previous ones together: they are written into a
staging directory next to the report directory, which is then swapped into its place
with renameat2(RENAME_EXCHANGE), so a reader sees all old files or all new ones.
Without that call (not Linux, an old kernel, a filesystem without it) two renames do
the swap and for a moment there is no report directory at all. A report directory
that is a mount point cannot be renamed: its files are then replaced one by one, each
whole. Files in the report directory that no export writes (someone's notes, a
pivot they saved there) are kept: hard-linked into the new directory before the swap,
and anything created during the swap is moved over after it. A report directory that
holds subdirectories is somebody's working folder, not ours to move aside: its files
are replaced one by one too. A shell whose working directory is the report directory
is left in the removed old one after a swap (`cd .` finds the new one).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import os
import shutil
import stat
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from b2b_common.errors import UserError
from b2b_platform.lib.report_files.output import EXPORT_FILES
from b2b_platform.lib.warehouse.private_files import shared_directory_mode, shared_file_mode

_STAGING_MARK = ".export-"


def export_version(directory: Path) -> str:
    """The version of the exported files in `directory` (names, sizes, modification
    times, which a directory swap keeps): a file edited or deleted by hand makes the
    export stale, so the next refresh writes it again."""
    entries = []
    for name in sorted(EXPORT_FILES):
        try:
            info = (directory / name).lstat()
        except OSError:
            entries.append((name, None))
            continue
        entries.append((name, info.st_size, info.st_mtime_ns, stat.S_ISREG(info.st_mode)))
    return hashlib.sha256(repr(entries).encode()).hexdigest()[:20]


# An export takes seconds; a staging directory this old was left by a killed process.
STALE_STAGING_SECONDS = 3600


@dataclass(frozen=True)
class StagedExport:
    """A new directory next to the report directory: written in full, then swapped in."""

    path: Path  # where this export's files are written
    target: Path  # the report directory they replace (symbolic links resolved)

    def publish(self) -> str:
        """Swap the staged files into the report directory; returns how it was done."""
        share(self.path, self.target)
        return replace_directory(self.path, self.target)


@contextmanager
def staged_export(report_dir: Path) -> Iterator[StagedExport]:
    """A staging directory for `report_dir`, removed on the way out unless it was published.

    It sits next to the real report directory (on the same filesystem, so a rename can
    swap them). While it is written it is the owner's only (an export that fails its
    check is never seen); published, it gets the report directory's permissions and
    its files the operator's umask (see `share`).
    """
    target = Path(os.path.realpath(report_dir))
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_staging(target)
    path = target.with_name(f".{target.name}{_STAGING_MARK}{uuid.uuid4().hex[:12]}")
    try:
        os.mkdir(path, 0o700)
    except OSError as exc:
        raise UserError(
            f"cannot create {path}: {exc.strerror} (the parent of the report directory must"
            " be writable: exports are written next to it, then swapped in)"
        ) from None
    try:
        yield StagedExport(path, target)
    finally:
        # After a swap this path holds nothing (or the old directory, if removing it failed).
        shutil.rmtree(path, ignore_errors=True)


def share(staged: Path, target: Path) -> None:
    """Give the staged export the modes it is published with: the report directory's
    permissions (a new one: the operator's umask) and, for each exported file, the mode
    the operator's umask gives a new file. The reports hold no personal data; they are
    written while the warehouse is open, when every new file is private."""
    for name in EXPORT_FILES:
        path = staged / name
        if path.is_file() and not path.is_symlink():
            os.chmod(path, shared_file_mode())
    if target.is_dir():
        shutil.copymode(target, staged)
    else:
        os.chmod(staged, shared_directory_mode())


def _sweep_stale_staging(target: Path) -> None:
    prefix = f".{target.name}{_STAGING_MARK}"
    cutoff = time.time() - STALE_STAGING_SECONDS
    for path in target.parent.iterdir():
        if path.name.startswith(prefix):
            with contextlib.suppress(OSError):
                if path.lstat().st_mtime < cutoff:
                    shutil.rmtree(path)


def replace_directory(new: Path, target: Path) -> str:
    """Put the complete directory `new` in the place of `target`, keeping the files of
    `target` that no export writes. Returns how: created, exchanged, two renames or
    file by file. On an error before the swap `target` is untouched."""
    if not os.path.lexists(target):
        os.rename(new, target)
        return "created"
    if not _swappable(target):
        _replace_files(new, target)
        return "file by file"
    _link_foreign(target, new)
    try:
        old, how = _swap(new, target)
    except OSError as exc:
        if exc.errno not in (errno.EBUSY, errno.EXDEV):
            raise
        # A bind mount (of the same filesystem) is no mount point to ismount().
        _replace_files(new, target)
        return "file by file"
    for entry in _foreign(old, target):  # created in the old directory during the swap
        os.rename(entry, target / entry.name)
    # The new files are in place: a leftover old directory is swept by a later export.
    shutil.rmtree(old, ignore_errors=True)
    return how


def _swappable(target: Path) -> bool:
    """A mount point cannot be renamed, and a folder with subfolders is someone's working
    folder (or a misconfigured data directory), not ours to move aside. Their files are
    replaced one by one instead, each whole, but a reader can meet old and new together."""
    if os.path.ismount(target):
        return False
    return not any(entry.is_dir() and not entry.is_symlink() for entry in target.iterdir())


def _swap(new: Path, target: Path) -> tuple[Path, str]:
    """Swap `new` into place; returns where the old directory went and how."""
    if _exchange(new, target):
        return new, "exchanged"
    return _two_renames(new, target), "two renames"


def _is_export_file(name: str) -> bool:
    # `.part` files of our names are what an older version left when it was killed.
    return name in EXPORT_FILES or name.removesuffix(".part") in EXPORT_FILES


def _foreign(directory: Path, other: Path) -> list[Path]:
    """Entries of `directory` that no export writes and that `other` lacks."""
    return [
        entry
        for entry in directory.iterdir()
        if not _is_export_file(entry.name) and not os.path.lexists(other / entry.name)
    ]


def _link_foreign(target: Path, new: Path) -> None:
    for entry in _foreign(target, new):  # files and symbolic links only (see above)
        _link_or_copy(entry, new / entry.name)


def _link_or_copy(source: str | Path, destination: str | Path) -> None:
    # A hard link copies nothing and is the same file, so edits made meanwhile stay.
    # Some filesystems (and fs.protected_hardlinks for others' files) refuse one.
    try:
        os.link(source, destination, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, destination, follow_symlinks=False)


def _two_renames(new: Path, target: Path) -> Path:
    """The swap without RENAME_EXCHANGE; returns where the old directory went.

    Between the two renames (microseconds) the report directory does not exist, so a
    reader can fail to find it, but never sees old and new files mixed.
    """
    old = new.with_name(new.name + ".old")
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    return old


def _replace_files(new: Path, target: Path) -> None:
    for source in sorted(new.iterdir()):
        if source.name in EXPORT_FILES:
            partial = target / (source.name + ".part")
            shutil.copyfile(source, partial)  # another filesystem: rename cannot move it
            shutil.copymode(source, partial)  # copyfile leaves the mode to the umask
            os.replace(partial, target / source.name)


AT_FDCWD = -100
RENAME_EXCHANGE = 2


def _exchange(new: Path, target: Path) -> bool:
    """Swap two existing paths in one step; False where the system cannot."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(AT_FDCWD, os.fsencode(new), AT_FDCWD, os.fsencode(target), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL):  # an old kernel, or a filesystem without it
        return False
    raise OSError(code, os.strerror(code), str(new), None, str(target))


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """libc's renameat2 (glibc 2.28+, musl 1.1.24+), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is None:
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function
