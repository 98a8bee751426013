"""Files fleetctl writes, written safely: exact modes whatever the umask, atomically, durably.

Plan files, the journal, import checkpoints and state, the device state file, secret-bearing device artifacts and
the sandbox's env file are uploaded as CI artifacts or hold fingerprints, endpoints and keys: they are created
0600 (the umask can only take bits away from `os.open`'s mode, so the mode is set again with `fchmod`, which the
umask does not touch). A file is replaced atomically — a temporary file in the same directory (so the rename
never crosses a file system), fsync, rename over the old one, fsync of the directory (so the rename itself
survives a crash) — and a reader sees the old file or the new one, never half of one. The journal is appended to,
never rewritten: `open_append` opens it O_APPEND with the same mode rules, and the caller fsyncs each entry.

Hand-written rather than a library: the standard library has every primitive (`tempfile.mkstemp`, `os.replace`,
`os.fsync`), and the libraries that wrap them (atomicwrites is archived) neither set an exact mode nor fsync the
directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO

PRIVATE = 0o600  # plan files, journal, state, checkpoints, secret-bearing artifacts
PUBLIC = 0o644  # files meant to be read by others (imported manifests, artifacts without secrets)


def fsync_dir(directory: str | Path) -> None:
    """Make a rename or a creation in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename is still atomic
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: str | bytes, *, mode: int = PRIVATE, encoding: str = "utf-8") -> Path:
    """Replace `path` with `data` atomically and durably, the file having exactly `mode`. The parent folders
    are created. On any error the old file is left as it was and no temporary file remains."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode(encoding) if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)
    return path


def open_append(path: str | Path, *, mode: int = PRIVATE, encoding: str = "utf-8") -> IO[str]:
    """Open `path` for appending (O_APPEND: every write lands at the end, never over an entry), created with
    exactly `mode`; an existing file with wider permissions (a journal written 0644 by an older fleetctl) is
    narrowed to `mode`. The caller flushes and fsyncs what must survive a crash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        os.fchmod(fd, mode)
    except PermissionError:
        if not existed:  # our own new file: chmod cannot fail, something is badly wrong
            os.close(fd)
            raise
        # another user's file we may append to but not chmod (a shared journal): its owner decides its mode
    except BaseException:
        os.close(fd)
        raise
    if not existed:
        fsync_dir(path.parent)
    return os.fdopen(fd, "a", encoding=encoding)


def remove(path: str | Path) -> bool:
    """Delete `path` durably; False when there was nothing to delete."""
    path = Path(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True
