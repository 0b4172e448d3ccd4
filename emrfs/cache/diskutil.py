"""Local-disk helpers shared by the block store and the ephemeral tier."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil


def makedirs_private(path: str) -> None:
    """``mkdir -p`` where every directory created is mode 0700 whatever the umask.

    Cache and tier directories hold other users' data otherwise readable by
    name (a 0755 directory lists every owner hash and file name); directories
    that already exist are left as they are.
    """
    parent = os.path.dirname(path)
    if parent != path and not os.path.isdir(parent):
        makedirs_private(parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return
    with contextlib.suppress(FileNotFoundError):  # removed meanwhile: as after makedirs
        os.chmod(path, 0o700)  # mkdir's mode is masked by the umask: set it exactly


def scandir(path: str) -> list[os.DirEntry]:
    """Entries of ``path`` (none when it is missing or not a directory)."""
    try:
        with os.scandir(path) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def unlink_path(path: str) -> bool:
    """Remove a block file (or whatever stands at its path: a directory goes whole)."""
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        shutil.rmtree(path, ignore_errors=True)
        return not os.path.lexists(path)


def clean_tmp(d: str) -> None:
    """Remove temp files whose writer is gone (its flock was released)."""
    for entry in scandir(os.path.join(d, "tmp")):
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(entry.path)
        except (BlockingIOError, FileNotFoundError):
            pass
        finally:
            os.close(fd)
