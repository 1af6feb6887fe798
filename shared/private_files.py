"""Backstop's data files are readable by their owner only: directories 0700, files 0600.

The database, the e-mail outbox and the JetStream store hold customers' alerts and addresses;
the key file opens the stored webhook secrets.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def owner_only_umask() -> None:
    """Every file this process creates from now on (outbox, nats-server's store) is private."""
    os.umask(0o077)


def private_dir(path: Path) -> Path:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _restrict(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty and private unless it exists; make it private if it does."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        _restrict(path, FILE_MODE)
    return path


def _restrict(path: Path, mode: int) -> None:
    info = path.stat()
    # Never tighten what is not ours, nor a shared sticky folder such as /tmp.
    if info.st_uid != os.getuid() or info.st_mode & stat.S_ISVTX:
        return
    if stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)


def protect_data(data_dir: Path, outbox: Path | None, *, create: bool) -> None:
    """At start: files created from now on are private, and so are the data dir and the outbox
    (made private also when an older version created them world-readable). ``create``: make
    them when missing (embedded mode); a separate service may run on a read-only file system."""
    owner_only_umask()
    for folder in (data_dir, outbox):
        if folder is not None and (create or folder.exists()):
            private_dir(folder)
