"""Writing feed files safely: inside the feeds folder, atomically, and only when changed."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from syndication.errors import FieldError, ValidationError

# Feed files are served by a web server running as another user; mkstemp makes 0600.
FILE_MODE = 0o644


def content_etag(data: bytes) -> str:
    """A strong ETag for a file's bytes: a quoted 128-bit SHA-256 prefix.

    >>> content_etag(b"")
    '"e3b0c44298fc1c149afbf4c8996fb924"'
    """
    # Spec: RFC 9110 §8.8.3 — a strong entity tag is a quoted opaque string that changes
    # whenever the bytes do.
    return f'"{hashlib.sha256(data).hexdigest()[:32]}"'


def write_atomically(path: Path, data: bytes, root: Path, *, fsync: bool = False) -> bool:
    """Replace ``path`` with ``data`` so readers see the old file or the new, never half.

    Atomic against any crash of a process (rename(2) within one folder). ``fsync`` also makes
    it durable against a crash of the machine; feed files leave it off, since they are a copy
    of the database that ``damaged_feeds`` checks and re-renders at worker start. It cost
    half of every render (six fsyncs, about 20 ms on this machine's disk).

    A relative ``path`` is taken as relative to ``root``. Missing folders are created.
    When the file already holds exactly ``data`` nothing is written (its mtime, and so
    HTTP caching, is untouched) and False is returned; otherwise True.

    Raises ``ValidationError`` when ``path`` resolves (after ``..`` and symlinks) to
    ``root`` itself or anywhere outside it.

    >>> write_atomically(feeds / "all.rss", body, feeds)
    True
    """
    target = _inside(root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if _holds(target, data):
        return False
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as tmp_file:
            tmp_file.write(data)
            tmp_file.flush()
            if fsync:
                os.fsync(tmp_file.fileno())
        os.chmod(tmp, FILE_MODE)
        # Same folder, same file system: rename is atomic (POSIX rename(2)).
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_dir(target.parent)
    return True


def remove_file(path: Path, root: Path) -> bool:
    """Delete ``path`` (strictly inside ``root``, else ``ValidationError``); False if it was not there."""
    target = _inside(root, path.relative_to(root) if path.is_absolute() else path)
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    return True


def holds_etag(path: Path, etag: str) -> bool:
    """Whether the file at ``path`` exists and its bytes have this ``content_etag``."""
    try:
        return content_etag(path.read_bytes()) == etag
    except OSError:
        return False


def _inside(root: Path, path: Path) -> Path:
    """``path`` resolved, or ValidationError if it is not strictly inside ``root``."""
    base = root.resolve()
    target = (root / path).resolve()
    if target == base or not target.is_relative_to(base):
        raise ValidationError([FieldError("path", f"{path} is outside the feeds folder {root}")])
    return target


def _holds(target: Path, data: bytes) -> bool:
    try:
        if target.stat().st_size != len(data):
            return False
        return target.read_bytes() == data
    except FileNotFoundError:
        return False


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; not every platform can open a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
