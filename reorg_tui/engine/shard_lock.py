"""Shards (``--shard K/N``) share a source: one lock per shard instead of one per source.

Each shard takes the source folder's lock and its path's (lock.py) shared, so an instance
without --shard, which takes them exclusive, and the shards refuse each other. Then, in the same
folder as ``path.lock`` (this user's default state folder for the source), ``shards-of-N.lock``
shared and ``shard-K-of-N.lock`` exclusive: two instances of one shard refuse each other, and one
whose N differs from that of the shards running finds their ``shards-of-M.lock`` held, and
refuses. Those checks are made under ``shards.lock``, held for the moment they take, so that two
shards of different N starting at once do not both pass (nor both refuse). Shared lock files are
never removed (a name removed while another process opens it would leave two locks that do not
see each other): a few empty files stay.

Threads: whoever starts an instance, or looks at one (``status``, a dashboard); no state kept.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import time
from pathlib import Path

from reorg_tui.engine.locate import default_state_dir
from reorg_tui.engine.lock import PATH_LOCK, AlreadyRunning, flocks_of_others, lock_holder, open_lock_file
from reorg_tui.engine.shard import Shard

SHARDS_MUTEX = "shards.lock"  # held while a shard checks and takes the locks below
_OF_N = re.compile(r"shards-of-([0-9]+)\.lock", re.ASCII)
MUTEX_WAIT = 10.0  # seconds a starting shard waits for another's checks (each takes microseconds)


def source_held_alone(source: Path, pid: int | None, shard: Shard) -> AlreadyRunning:
    """Shard ``shard`` cannot take ``source``: a process holds it alone."""
    who = f" (pid {pid})" if pid else ""
    return AlreadyRunning(
        source,
        pid,
        message=f"a reorg-tui process{who} holds {source} alone (an instance without --shard, an undo "
        f"or an apply): shard {shard} cannot run beside it; stop it first",
    )


def refused_beside_shards(source: Path, pid: int | None) -> AlreadyRunning:
    """An instance without --shard cannot take ``source``: say so, naming the shards if they
    are what holds it."""
    running = running_shards(source)
    if running is None:
        return AlreadyRunning(source, pid)
    n, holder = running
    who = f" (pid {holder or pid})" if holder or pid else ""
    return AlreadyRunning(
        source,
        holder or pid,
        message=f"shards of {n}{who} are processing {source}: an instance without --shard cannot run "
        f"beside them (start it with --shard K/{n}, or stop the shards first)",
    )


def running_shards(source: Path) -> tuple[int, int | None] | None:
    """The N of the shards running on ``source`` (the ``shards-of-N.lock`` someone holds in its
    path folder) and one of their pids, if any run (for this user: the folder is this user's)."""
    folder = default_state_dir(source)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    for name in names:
        match = _OF_N.fullmatch(name)
        if match is not None and _seen_held(folder / name):
            return int(match.group(1)), lock_holder(folder / name)
    return None


def shard_held(source: Path, shard: Shard) -> bool:
    """Whether another process runs ``shard`` of ``source`` (holds its lock, for this user)."""
    return _seen_held(default_state_dir(source) / f"{shard.folder}.lock")


def _seen_held(path: Path) -> bool:
    """Whether another process holds a flock on ``path``, read from the kernel's table
    (/proc/locks, by the file's inode), the lock never touched: a look that took it, even for an
    instant, would make a shard starting at that instant refuse as "already running". For the
    readers (``status``, a dashboard, a refusal's wording), which hold no lock that orders them
    with the shards' starts."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False  # not a lock file anyone takes (a starting instance refuses it: lock.py)
    return (st.st_dev, st.st_ino) in flocks_of_others()


def _held_by_another(path: Path) -> bool:
    """Whether another process holds a flock on ``path`` (tried exclusive, let go at once; tried
    three times, in case another probe holds it for a moment). Only under shards.lock (``take``),
    where no shard starting can meet the probe: each takes these locks under it too."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        for attempt in range(3):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if attempt < 2:
                    time.sleep(0.005)
                continue
            return False
        return True
    finally:
        os.close(fd)  # closing lets go of a lock taken


def hold_mutex(folder: Path, source: Path) -> int:
    """A descriptor holding ``shards.lock`` in ``folder`` (``source``'s default state folder),
    waited for up to MUTEX_WAIT seconds (AlreadyRunning after that); closing it lets go."""
    mutex = open_lock_file(folder / SHARDS_MUTEX)
    deadline = time.monotonic() + MUTEX_WAIT
    while True:
        try:
            fcntl.flock(mutex, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return mutex
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(mutex)
                pid = lock_holder(folder / SHARDS_MUTEX)
                raise AlreadyRunning(
                    source,
                    pid,
                    message=f"another shard of {source} (pid {pid}) has been starting for "
                    f"{MUTEX_WAIT:g}s and holds {folder / SHARDS_MUTEX}: try again once it is up",
                ) from None
            time.sleep(0.01)
        except BaseException:
            os.close(mutex)
            raise


def take(folder: Path, source: Path, shard: Shard, held: list[int]) -> None:
    """Under ``shards.lock`` in ``folder``: the path (``held[0]``, path.lock's descriptor)
    shared, refused if shards of another N run, then this N's lock shared and this shard's
    exclusive. Appends each descriptor to ``held``; the caller closes them (on an error too)."""
    mutex = hold_mutex(folder, source)
    try:
        try:
            fcntl.flock(held[0], fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise source_held_alone(source, lock_holder(folder / PATH_LOCK), shard) from None
        own = f"shards-of-{shard.n}.lock"
        for name in sorted(os.listdir(folder)):
            match = _OF_N.fullmatch(name)
            if match is None or name == own or not _held_by_another(folder / name):
                continue
            pid = lock_holder(folder / name)
            who = f" (pid {pid})" if pid else ""
            raise AlreadyRunning(
                source,
                pid,
                message=f"shards of {match.group(1)}{who} are processing {source}: shard {shard} "
                f"cannot run beside them (every shard of one source must have the same N)",
            )
        of_n = open_lock_file(folder / own)
        held.append(of_n)
        fcntl.flock(of_n, fcntl.LOCK_SH)  # blocks only while a check like the one above holds it
        mine = open_lock_file(folder / f"{shard.folder}.lock")
        held.append(mine)
        try:
            fcntl.flock(mine, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = lock_holder(folder / f"{shard.folder}.lock")
            who = f" (pid {pid})" if pid else ""
            raise AlreadyRunning(
                source, pid, message=f"shard {shard} of {source} is already running{who}"
            ) from None
    finally:
        os.close(mutex)
