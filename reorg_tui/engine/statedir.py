"""The state folder is a trust boundary: what it holds (the ledger and its retry queue, the
published snapshot, the control socket) is believed, so only its owner may be able to write it.

A daemon (``prepare``) refuses, before it writes anything there, a state folder that is not its
own user's, or that group or others may write; and one below a folder that another user could
use to swap it: an ancestor owned by someone other than root or this user, or writable by group
or others without the sticky bit (``/tmp`` is fine: its sticky bit keeps others from renaming
what is ours). A group-writable ancestor is allowed where that group is its owner's private
group (the user-private-group scheme of ``umask 002`` systems), never the state folder itself.
Folders it has to make are made 0755 (the ancestors) and 0700 (the state folder), then checked
again: one that another user made first, in a race, is refused all the same.

A reader (``check_for_reading``: ``status``, the quarantine commands, an attaching dashboard)
applies the same rules with its own list of trusted owners, and creates nothing.

Threads: whoever starts an instance, or reads one, calls these; they keep no state.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Collection
from pathlib import Path

from reorg_tui.engine.errors import ExitCode, ReorgError

_GROUP_OR_OTHERS = stat.S_IWGRP | stat.S_IWOTH


class UntrustedStateDir(ReorgError):
    """A state folder that someone else could have written: nothing in it is believed."""

    exit_code = ExitCode.USAGE


def prepare(path: Path) -> None:
    """Make ``path`` (and the folders above it that are missing) for this user, or raise
    UntrustedStateDir if it, or a folder above it, could be written by another user."""
    me = os.geteuid()
    _refuse_unless_trusted(path, me)  # what exists already, before anything is made there
    missing = []
    for folder in (path, *path.parents):
        if os.path.lexists(folder):
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700 if folder == path else 0o755)
        except FileExistsError:
            continue  # made by someone else meanwhile: the check below says whether it is ours
        except OSError as exc:
            raise UntrustedStateDir(f"cannot make the state folder {folder}: {exc.strerror}") from None
    _refuse_unless_trusted(path, me)
    try:
        os.chmod(path, 0o700)  # ours, and not writable by others: the control socket is ours alone
    except OSError as exc:
        raise UntrustedStateDir(f"cannot make the state folder {path} private: {exc.strerror}") from None


def check_for_reading(path: Path, source: Path | None) -> None:
    """``check`` as a reader does it (``status``, the quarantine commands, an attaching
    dashboard): the folder may be this user's or root's, or belong to the user whose process
    holds ``source``'s lock (the kernel's lock table says so, never a file in the folder being
    judged): root looking at a daemon that runs as a service user."""
    from reorg_tui.engine.lock import lock_holder  # (lock.py uses this module)

    owners = {os.geteuid(), 0}
    holder = lock_holder(source) if source is not None else None
    if holder is not None:
        try:
            owners.add(os.stat(f"/proc/{holder}").st_uid)
        except OSError:
            pass  # gone meanwhile: nothing more to trust
    check(path, owners=owners)


def _refuse_unless_trusted(path: Path, me: int) -> None:
    try:
        check(path, owners={me})
    except UntrustedStateDir as exc:
        raise UntrustedStateDir(f"{exc}; give this instance a --state-dir of its own") from None


def check(path: Path, *, owners: Collection[int]) -> None:
    """Raise UntrustedStateDir unless ``path``, where it exists, is a folder owned by one of
    ``owners`` that group and others cannot write, and every folder above it is safe (see the
    module's docstring). A missing ``path`` is not an error: there is nothing in it to believe."""
    real = Path(os.path.realpath(path))
    _check_links(path, owners)
    try:
        st = os.lstat(real)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise UntrustedStateDir(f"cannot look at the state folder {path}: {exc.strerror}") from None
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            raise UntrustedStateDir(f"state folder {path} is not a folder")
        if st.st_uid not in owners:
            raise UntrustedStateDir(
                f"state folder {path} is owned by {_user(st.st_uid)}, not by {_names(owners)}: "
                "another user could have written what is in it"
            )
        if st.st_mode & _GROUP_OR_OTHERS:
            raise UntrustedStateDir(
                f"state folder {path} is writable by group or others (mode "
                f"{stat.S_IMODE(st.st_mode):04o}): another user could have written what is in it"
            )
    trusted = {0, *owners} | ({st.st_uid} if st is not None else set())
    for folder in real.parents:
        try:
            up = os.lstat(folder)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise UntrustedStateDir(
                f"cannot look at {folder}, above the state folder: {exc.strerror}"
            ) from None
        _check_ancestor(folder, up, trusted, path)


def _check_ancestor(folder: Path, st: os.stat_result, trusted: set[int], path: Path) -> None:
    if st.st_uid not in trusted:
        raise UntrustedStateDir(
            f"{folder}, above the state folder {path}, is owned by {_user(st.st_uid)}, who could "
            "swap the state folder"
        )
    writable = st.st_mode & _GROUP_OR_OTHERS
    if not writable or st.st_mode & stat.S_ISVTX:
        return  # a sticky folder (/tmp): others may not rename or remove what is not theirs
    if writable == stat.S_IWGRP and _private_group(st.st_gid, st.st_uid):
        return
    raise UntrustedStateDir(
        f"{folder}, above the state folder {path}, is writable by group or others (mode "
        f"{stat.S_IMODE(st.st_mode):04o}), so another user could swap the state folder"
    )


def _check_links(path: Path, owners: Collection[int]) -> None:
    """A symlink on the way to the state folder is followed only if root or a trusted owner made
    it (anyone else's could point the daemon at a folder of their choosing later)."""
    for part in (*reversed(path.parents), path):
        try:
            st = os.lstat(part)
        except OSError:
            return  # missing from here on
        if stat.S_ISLNK(st.st_mode) and st.st_uid not in {0, *owners}:
            raise UntrustedStateDir(
                f"{part}, on the way to the state folder {path}, is a symlink of {_user(st.st_uid)}"
            )


def _private_group(gid: int, uid: int) -> bool:
    """Whether ``gid`` is the private group of user ``uid``: its primary group, named as the user,
    with no other member."""
    try:
        user, group = pwd.getpwuid(uid), grp.getgrgid(gid)
    except KeyError:
        return False
    return user.pw_gid == gid and group.gr_name == user.pw_name and set(group.gr_mem) <= {user.pw_name}


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _names(uids: Collection[int]) -> str:
    return " or ".join(sorted(_user(u) for u in uids))
