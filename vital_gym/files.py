"""Atomic file writes: a crash or an error never leaves a half-written preset or dataset shard."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(path: str | Path, fsync: bool = False) -> Iterator[BinaryIO]:
    """A new file beside ``path`` that replaces ``path`` when the block ends without error, and is
    removed when it raises (``path`` is then left as it was). ``fsync``: flushed to disk before the rename.

    Why not ``tempfile.mkstemp``: its files are created with mode 0600, so a ``.vital`` written through
    it could not be read by another user (a shared studio machine, a dataset on a cluster); this one is
    created as any new file is, 0666 less the umask.
    """
    path = Path(path)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"{path}: could not create a temporary file beside it")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
