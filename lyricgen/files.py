"""Files written so that a crash or a full disk leaves the old one: the one writer of checkpoints and `vocab.json`.

The bytes go to a temporary file in the destination's own folder, are flushed and fsynced, and the file is then
renamed onto the destination with `os.replace`, an atomic step within one file system: a reader sees the old
file or the new one, never part of one. (Lightning's own writer puts the temporary file in the system's temp
folder and moves it: across file systems a move is a copy, which a full disk cuts short, destination included.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # the errors of a full disk: no space left, the user's quota used up


def write_atomically(path: str | os.PathLike, data: bytes | memoryview) -> None:
    """Write `data` to `path` whole or not at all: on any error (ENOSPC half-way, a kill) `path` is as it was, and
    the temporary file is removed (a kill -9 may leave one: `.NAME.*.tmp`, never read)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")  # made with open(x): the usual mode, not 0600
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the bytes on the disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(path.parent)  # the rename itself survives a power cut


def _fsync_folder(folder: Path) -> None:
    """Make a folder's entries durable (POSIX; Windows cannot open a folder, and its renames are journalled)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder (e.g. some network mounts): the rename stands
        pass
    finally:
        os.close(fd)
