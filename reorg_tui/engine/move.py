"""The move protocol: a file is in exactly one place at every instant, and nothing is overwritten.

Every name is resolved relative to a folder descriptor from a ``Tree`` (see ``dirs``): no path
string below a configured root is resolved twice, and no symlink below it is ever followed.

One protocol for every transfer (deliver, quarantine, release, undo: a ``Mover`` each, told its
kind), whatever the direction. Same filesystem: ``renameat2(RENAME_NOREPLACE)`` (or link, then
unlink, where the flag is not supported), written to the ledger after the fact. Across
filesystems, each step written to the ledger as it is passed (see ledger.py, steps.py): the
intent, a copy into a staging folder on the target's filesystem, fsync, verify, staged; then,
only if the source name still holds the same file unchanged since the copy began (inode, size,
mtime, ctime), publish without overwriting and fsync the folder; check the source once more, and
only then remove it. A source that changed, or was renamed away, withdraws the copy: the file
settles again.

After a crash, recovery (recovery.py) reads the ledger's open rows and finishes or withdraws each;
it never guesses from bytes. Only the link-then-unlink fallback can leave one inode under two
names, and that is found by inode (a *twin*) and counted once. Partial copies with no row (a crash
between making the staging file and writing its intent) belong to a dead process by their name,
and ``recover`` removes them.

No failure after a file was renamed or published deletes it: a step that fails afterwards leaves
the file where it is and says why. A setuid or setgid file that this daemon may not clear (not
root, not its owner) is not moved at all.

Over 300 lines: the protocol's steps (open, copy, check, publish, remove) are read best together,
each beside the failure it guards against; the rename lane's shortcut lives in rename_lane.py.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import logging
import os
import re
import stat
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from reorg_tui.engine import steps
from reorg_tui.engine.dirs import NotAFolder, Tree
from reorg_tui.engine.errors import (
    Abandoned,
    Changed,
    Conflict,
    HardLinked,
    MoveError,
    Unsafe,
    Vanished,
)
from reorg_tui.engine.fileops import (
    SET_ID,
    SourceFile,
    check_renamed,
    is_twin,
    lstat_at,
    rename_noreplace,
    same_bytes_as,
    sha256_fd,
)
from reorg_tui.engine.kinds import ConflictPolicy, Kind
from reorg_tui.engine.ledger import (
    Identity,
    Ledger,
    LedgerWriteError,
    RenameRow,
    Step,
    Transfer,
    TransferKind,
    path_blob,
)
from reorg_tui.engine.naming import numbered
from reorg_tui.engine.store import pid_alive

log = logging.getLogger(__name__)
STAGING = ".reorg-tmp"
CHUNK = 8 * 1024 * 1024


class Outcome(NamedTuple):
    kind: Kind  # MOVED, COPIED, TWIN, DEDUPED or SKIPPED
    path: str  # where the file is now (or the existing file, for skipped)
    size: int
    folder: str = ""  # its folder, relative to the mover's root
    renamed: bool = False  # its name was taken: it has a collision name (``name (1).ext``)
    warning: str | None = None  # it arrived, but a step after (clearing setuid bits) failed: why


@dataclass
class Journal:
    """What a move tells the ledger beside the file itself."""

    batch: str = ""  # what it is part of (a batch of the daemon, an undo, an apply)
    attempts: int = 1
    errors: list[str] = field(default_factory=list)  # of the attempts before this one
    undoes: int | None = None  # an undo: the row it reverses
    renames: list[RenameRow] | None = None  # given: renames are added here, for the caller to write


class _Copy(NamedTuple):
    """A copy in staging: its name there, its fstat, the source still open, the source's
    identity when it was opened, the ledger row (None without a ledger), and the folder whose
    filesystem holds it (below the root; "" is the root)."""

    tmp: str
    copied: os.stat_result
    fd_in: int
    identity: Identity
    row: int | None
    mount: str


class _LedgerTrouble:
    """Says once that the ledger cannot be written (a full state folder), and once that it can
    again, rather than once a file. Moves go on meanwhile: a rename needs no record, and a copy
    that cannot write its intent waits (see ``Mover``)."""

    def __init__(self) -> None:
        self.failing = False

    def failed(self, exc: Exception) -> None:
        if not self.failing:
            self.failing = True
            log.warning("cannot write the ledger (%s): moves go on, unrecorded, and copies wait", exc)

    def ok(self) -> None:
        if self.failing:
            self.failing = False
            log.warning("the ledger can be written again")


LEDGER_TROUBLE = _LedgerTrouble()


class Space(Protocol):
    """Room on the destination, held for each copy while it runs (see disk.DiskGate)."""

    def reserve(self, size: int, inodes: int = 1) -> bool: ...
    def release(self, size: int, inodes: int = 1, *, kept: bool) -> None: ...


class _CrossDevice(Exception):
    """The destination folder is on another filesystem than the source: the file is copied."""


class _Stale(Exception):
    """A cached folder descriptor names a folder that was removed: open it afresh and retry."""


class Mover:
    """Moves files into one root (the destination tree, the quarantine, or back to the source)."""

    def __init__(
        self,
        tree: Tree,
        *,
        verify: bool = False,
        stop: threading.Event | None = None,
        space: Space | None = None,
        ledger: Ledger | None = None,
        kind: TransferKind = TransferKind.DELIVER,
    ):
        self.tree = tree
        self.ledger = ledger  # each transfer is written here (set once the engine holds the source)
        self.kind = kind
        self.root = tree.root
        self.space = space  # holds room on the destination for each copy, or refuses it
        self.rename_lock = threading.Lock()  # renames into root, one at a time (see rename_lane)
        # (source device, destination folder's device) pairs a rename failed between with EXDEV:
        # decided per destination folder's filesystem, so one date folder that is a mount of its
        # own (a filesystem per year, a btrfs subvolume) changes nothing for the other folders.
        self.exdev: set[tuple[int, int]] = set()
        self._token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # unique per run: names never repeat
        self._serial = itertools.count()
        self.fsync_seconds = 0.0
        self.verify = verify
        self.stop = stop or threading.Event()
        self._ids = os.geteuid(), os.getegid()
        self.is_root = self._ids[0] == 0

    def recover(self, *, kept_younger: float = 0.0) -> int:
        """Remove partial copies left by a crash below this mover's root (see ``sweep_staging``)."""
        return sweep_staging(self.tree, kept_younger=kept_younger)

    def move(
        self,
        source: Tree,
        rel: str,
        folder: str,
        name: str,
        on_conflict: ConflictPolicy = "rename",
        st: os.stat_result | None = None,
        journal: Journal | None = None,
    ) -> Outcome:
        """Move ``rel`` (below the ``source`` tree) to ``folder/name`` below this mover's root.

        ``st`` is the source's lstat if the caller just took it: it saves a system call. Should
        the name have been swapped for something else since (a symlink, a FIFO), the rename is
        checked after the fact and undone; a copy checks what it opened before reading.
        ``journal`` says what the ledger is told beside the file (its batch, earlier attempts).
        """
        journal = journal or Journal()
        src_dir, _, src_name = rel.rpartition("/")
        for attempt in (1, 2):
            try:
                fd = source.lend(src_dir)
            except (FileNotFoundError, NotAFolder):
                # Its folder is gone, or was swapped for a symlink: the file is no longer below
                # the source root, and nothing outside it is touched.
                raise Vanished(source.path(rel)) from None
            try:
                return self._move_from(fd, src_name, source.path(rel), folder, name, on_conflict, st, journal)
            except Vanished:
                if attempt == 2 or not src_dir:
                    raise
                source.forget()  # a cached descriptor may name a removed folder: look once more
                st = None
            finally:
                source.give_back(fd)
        raise AssertionError("unreachable")

    def _move_from(
        self,
        fd: int,
        src_name: str,
        src_path: str,
        folder: str,
        name: str,
        on_conflict: ConflictPolicy,
        st: os.stat_result | None,
        journal: Journal,
    ) -> Outcome:
        if st is None:
            try:
                st = lstat_at(src_name, fd)
            except FileNotFoundError:
                raise Vanished(src_path) from None
        if not stat.S_ISREG(st.st_mode):
            raise Vanished(src_path)
        if st.st_mode & SET_ID and not self.is_root and st.st_uid != self._ids[0]:
            raise Unsafe(
                f"setuid or setgid file of uid {st.st_uid}, which this daemon (uid {self._ids[0]}) "
                "may not clear: left in the source until its owner clears the bit or root moves it"
            )
        src = SourceFile(fd, src_name, src_path, st)
        warnings: list[str] = []

        def by_rename(folder_fd: int, dst: str) -> None:
            if self.exdev and (st.st_dev, os.fstat(folder_fd).st_dev) in self.exdev:
                raise _CrossDevice()
            # Renames out of one folder serialize on its lock in the kernel anyway; queueing
            # here instead of there costs far less than threads contending for it.
            try:
                with self.rename_lock:
                    rename_noreplace(fd, src_name, folder_fd, dst)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # Remembered for this pair of filesystems: the next file from there to a folder
                # on that one goes straight to a copy.
                self.exdev.add((st.st_dev, os.fstat(folder_fd).st_dev))
                raise _CrossDevice() from None
            if steps.armed:
                steps.reached("renamed")
            warning = check_renamed(src, folder_fd, dst)
            if warning:
                warnings.append(warning)

        try:
            outcome = self._fresh(
                lambda: self._publish(src, folder, name, on_conflict, by_rename, Kind.MOVED)
            )
        except _CrossDevice:
            return self._fresh(lambda: self._move_by_copy(src, folder, name, on_conflict, journal))
        if outcome.kind in (Kind.MOVED, Kind.TWIN):
            self._journal_rename(st, src_path, outcome.path, journal)
        return outcome._replace(warning=warnings[0]) if warnings else outcome

    def _journal_rename(self, st: os.stat_result, src: str, dst: str, journal: Journal) -> None:
        if self.ledger is None:
            return
        row = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        entry = (*row, path_blob(src), path_blob(dst), time.time())
        try:
            if journal.undoes is not None or journal.attempts > 1 or journal.errors:
                self.ledger.record([self._row(Identity(*row), src, dst, Step.DONE, journal)])
            elif journal.renames is not None:
                journal.renames.append(entry)
            else:
                self.ledger.record_renames(self.kind, journal.batch, [entry])
        except LedgerWriteError as exc:
            LEDGER_TROUBLE.failed(exc)  # the file has moved: that stays so, recorded or not
        else:
            LEDGER_TROUBLE.ok()

    def _row(self, identity: Identity, src: str, dst: str, step: Step, journal: Journal) -> Transfer:
        now = time.time()
        return Transfer(
            kind=self.kind,
            step=step,
            identity=identity,
            source=os.fsencode(src),
            target=os.fsencode(dst),
            started=now,
            finished=None if step.open else now,
            batch=journal.batch,
            attempts=journal.attempts,
            errors=list(journal.errors),
            undoes=journal.undoes,
        )

    def _fresh(self, action: Callable[[], Outcome]) -> Outcome:
        """Run ``action``; if a cached folder turned out removed, once more with fresh folders."""
        try:
            return action()
        except _Stale:
            self.tree.forget()
        try:
            return action()
        except _Stale:
            raise MoveError(f"folders under {self.root} keep disappearing", transient=True) from None

    def _move_by_copy(
        self, src: SourceFile, folder: str, name: str, on_conflict: ConflictPolicy, journal: Journal
    ) -> Outcome:
        size = src.st.st_size
        # Its file's inode, and those of the folders it may have to make (the first into a folder).
        inodes = 1 + (0 if self.tree.knows(folder) else folder.count("/") + 1)
        mount = self._mount_of(folder)
        staging_folder = f"{mount}/{STAGING}" if mount else STAGING
        inodes += 0 if self.tree.knows(staging_folder) else 1
        if self.space is not None and not self.space.reserve(size, inodes):
            raise MoveError("waiting for disk space", transient=True, code=errno.ENOSPC)
        kept = False
        staging = self._lend(staging_folder)
        try:
            copy = self._copy_to_staging(src, staging, staging_folder, self.tree.path(folder, name), journal)
            published = False
            try:

                def by_tmp(folder_fd: int, dst: str) -> None:
                    nonlocal published
                    self._check_source(src, copy)  # before publishing: the same file, unchanged
                    rename_noreplace(staging, copy.tmp, folder_fd, dst)
                    published = True  # the temporary name is gone with the rename
                    self._finish_copy(src, folder_fd, dst, copy, self.tree.path(folder, dst))

                outcome = self._publish(src, folder, name, on_conflict, by_tmp, Kind.COPIED)
                kept = published
                return outcome
            finally:
                os.close(copy.fd_in)
                if not published:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(copy.tmp, dir_fd=staging)
                    self._advance(copy.row, Step.WITHDRAWN)
        finally:
            self.tree.give_back(staging)
            if self.space is not None:
                self.space.release(size, inodes, kept=kept)

    def _advance(
        self, row: int | None, step: Step, *, target: str | None = None, error: str | None = None
    ) -> None:
        """Write a step the disk has already taken. Should the write fail, the disk stays as it
        is: recovery reads what happened from it (a staged copy gone from staging is looked for
        at its target)."""
        if row is None or self.ledger is None:
            return
        try:
            self.ledger.advance(row, step, target=os.fsencode(target) if target else None, error=error)
        except LedgerWriteError as exc:
            LEDGER_TROUBLE.failed(exc)
        else:
            LEDGER_TROUBLE.ok()

    def _check_source(self, src: SourceFile, copy: _Copy) -> None:
        """The source name must still hold the file the copy was made from, unchanged since the
        copy began: Changed if it was written to (or its metadata changed), Vanished if it is
        gone or its name holds another file now (renamed away, replaced)."""
        try:
            now = lstat_at(src.name, src.folder)
        except FileNotFoundError:
            raise Vanished(src.path) from None
        if (now.st_dev, now.st_ino) != (copy.identity.dev, copy.identity.ino):
            raise Vanished(src.path)
        if not copy.identity.matches(now):
            raise Changed(src.path)

    def _finish_copy(self, src: SourceFile, folder: int, name: str, copy: _Copy, path: str) -> None:
        """The copy is published: make its folder durable, check the source once more, then
        remove it, so that there is one copy.

        Where the source is no longer that file, unchanged (written to, renamed away, replaced
        since the check before publishing), the published copy is taken back: the file is
        wherever its name went, whole. Where it cannot be removed (a read-only mount, an
        immutable folder), the fsync fails, or the destination was unmounted under the copy
        (its bytes went where no one can reach them), the published copy is taken back too: the
        file stays in the source alone. A copy is taken back only while the source holds the
        same file: that is never the file's last copy."""
        steps.reached("published")
        self._advance(copy.row, Step.PUBLISHED, target=path)
        steps.reached("recorded")
        try:
            os.fsync(folder)
            mount = self.tree.path(copy.mount)
            if os.stat(mount).st_dev != copy.copied.st_dev:
                raise MoveError(f"{mount} was unmounted during the copy", transient=True)
            self._check_source(src, copy)
            os.unlink(src.name, dir_fd=src.folder)
        except (OSError, MoveError, Changed, Vanished) as exc:
            if isinstance(exc, Vanished) and os.fstat(copy.fd_in).st_nlink == 0:
                # Deleted from the source during the copy's last steps: what was published is
                # the file now, and it stays.
                self._advance(
                    copy.row, Step.DONE, error="its source was deleted after the copy was published"
                )
                return
            with contextlib.suppress(OSError):
                if lstat_at(name, folder).st_ino == copy.copied.st_ino:
                    os.unlink(name, dir_fd=folder)
                    os.fsync(folder)
            self._advance(copy.row, Step.WITHDRAWN, error=str(exc))
            if isinstance(exc, (MoveError, Changed, Vanished)):
                raise
            raise MoveError.from_os(exc, "remove the source after its copy") from None
        steps.reached("removed")
        self._advance(copy.row, Step.DONE)

    def _lend(self, folder: str) -> int:
        """A descriptor for ``folder`` below the root, made if missing; refused if anything on
        the way is a symlink or a file."""
        try:
            return self.tree.lend(folder, create=True)
        except NotAFolder as exc:
            # The cause first, the folder after: a narrow screen cuts the end of a reason.
            raise MoveError(f"{exc.strerror} ({self.tree.path(folder)})", transient=False) from None
        except FileNotFoundError:
            raise _Stale() from None  # a folder above it was removed since it was opened

    def _publish(
        self,
        src: SourceFile,
        folder: str,
        name: str,
        on_conflict: ConflictPolicy,
        put: Callable[[int, str], None],
        kind: Kind,
    ) -> Outcome:
        """Put the file in ``folder`` under ``name`` or the first free collision name, as the
        policy says."""
        fd = self._lend(folder)
        try:
            size = src.st.st_size
            candidate = name
            for n in range(1, 100_000):
                try:
                    put(fd, candidate)
                    return Outcome(kind, self.tree.path(folder, candidate), size, folder, n > 1)
                except FileExistsError:
                    pass
                except FileNotFoundError:
                    if not src.still_here():
                        raise Vanished(src.path) from None
                    raise _Stale() from None  # the source is there, so the folder is what went
                # An interrupted earlier move may have published this very file under any of the
                # names tried (after a collision, "name (1)"): finding it there ends the move.
                if is_twin(src, fd, candidate):
                    src.remove()
                    return Outcome(Kind.TWIN, self.tree.path(folder, candidate), size, folder, n > 1)
                if n == 1:
                    if on_conflict == "skip":
                        return Outcome(Kind.SKIPPED, self.tree.path(folder, candidate), size, folder)
                    if on_conflict == "quarantine":
                        raise Conflict(self.tree.path(folder, candidate))
                    if on_conflict == "dedupe" and same_bytes_as(src, fd, candidate):
                        # Removed only if it is still the file that was compared, unchanged: a
                        # writer at it during the comparison makes it new work (it settles again).
                        if not src.remove_unchanged():
                            raise Changed(src.path)
                        return Outcome(Kind.DEDUPED, self.tree.path(folder, candidate), size, folder)
                candidate = numbered(name, n)
            raise MoveError(f"no free name for {name!r} in {self.tree.path(folder)}", transient=False)
        finally:
            self.tree.give_back(fd)

    def _mount_of(self, folder: str) -> str:
        """The shallowest folder from the root down to ``folder`` (made if missing) on
        ``folder``'s filesystem: where its copies are staged, so that publishing one is a rename
        within a filesystem. The root itself ("") unless a folder on the way is a mount of its
        own (a filesystem per year, a btrfs subvolume). Looked up afresh for each copy (a few
        fstat calls on cached folders, beside a copy's fsync): a folder mounted or unmounted
        since is seen at once."""
        fd = self._lend(folder)
        try:
            device = os.fstat(fd).st_dev
        finally:
            self.tree.give_back(fd)
        parts = folder.split("/") if folder else []
        for depth in range(len(parts)):
            prefix = "/".join(parts[:depth])
            fd = self._lend(prefix)
            try:
                if os.fstat(fd).st_dev == device:
                    return prefix
            finally:
                self.tree.give_back(fd)
        return folder

    def _copy_to_staging(
        self, src: SourceFile, staging: int, staging_folder: str, target: str, journal: Journal
    ) -> _Copy:
        """Copy into a new file in the staging folder, its intent written first."""
        st = src.st
        try:
            fd_in, fst = src.open()
        except HardLinked as exc:
            # Across filesystems the other names would keep the old bytes: it waits, and once
            # the producer drops its other name, the next attempt copies it.
            raise MoveError(str(exc), transient=True) from None
        try:
            if (fst.st_ino, fst.st_size, fst.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
                raise Changed(src.path)
            identity = Identity.of(fst)
            tmp = f"{self._token}-{next(self._serial)}.part"
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                fd_out = os.open(tmp, flags, 0o600, dir_fd=staging)
            except FileNotFoundError:  # the staging folder was removed behind our back
                raise _Stale() from None
            row = None
            try:
                if self.ledger is not None:
                    intent = self._row(identity, src.path, target, Step.INTENT, journal)
                    intent.staging = os.fsencode(self.tree.path(staging_folder, tmp))
                    intent.copy_ino = os.fstat(fd_out).st_ino
                    row = self.ledger.begin(intent)
                    steps.reached("intent")
                digest = self._copy_data(fd_in, fd_out, fst.st_size)
                # Setuid and setgid bits are never carried over; ownership follows the source
                # only when we are root (anyone else cannot give files away).
                os.fchmod(fd_out, stat.S_IMODE(fst.st_mode) & ~SET_ID)
                if self.is_root and (fst.st_uid, fst.st_gid) != self._ids:
                    os.fchown(fd_out, fst.st_uid, fst.st_gid)
                os.utime(fd_out, ns=(fst.st_atime_ns, fst.st_mtime_ns))
                synced = time.perf_counter()
                os.fsync(fd_out)
                # A running average of how long the disk makes a copy wait: the engine runs copies
                # in parallel only where there is waiting to overlap.
                self.fsync_seconds = 0.9 * self.fsync_seconds + 0.1 * (time.perf_counter() - synced)
                steps.reached("copied")
                if not identity.matches(os.fstat(fd_in)):
                    raise Changed(src.path)  # first: a writer explains a size that differs
                copied = os.fstat(fd_out)
                if copied.st_size != fst.st_size:
                    raise MoveError("copy has the wrong size", transient=True, code=errno.EIO)
                if digest is not None and sha256_fd(fd_out) != digest:
                    raise MoveError("checksum of the copy differs", transient=True, code=errno.EIO)
                if row is not None and self.ledger is not None:
                    self.ledger.advance(row, Step.STAGED)
                    steps.reached("staged")
            except BaseException as exc:
                os.close(fd_out)
                os.unlink(tmp, dir_fd=staging)
                self._advance(row, Step.WITHDRAWN, error=str(exc) or type(exc).__name__)
                if isinstance(exc, LedgerWriteError):  # nothing published: it waits, and is retried
                    LEDGER_TROUBLE.failed(exc)
                    raise MoveError(f"cannot write the ledger: {exc}", transient=True) from None
                raise
            os.close(fd_out)
            return _Copy(tmp, copied, fd_in, identity, row, staging_folder.rpartition("/")[0])
        except BaseException:
            os.close(fd_in)
            raise

    def _copy_data(self, fd_in: int, fd_out: int, size: int) -> bytes | None:
        if self.verify:
            digest = hashlib.sha256()
            left = size  # what was there when it was opened: bytes appended since are not ours
            while left > 0 and (chunk := os.read(fd_in, min(1 << 20, left))):
                left -= len(chunk)
                if self.stop.is_set():
                    raise Abandoned()
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd_out, view) :]
            return digest.digest()
        offset = 0
        while offset < size:
            if self.stop.is_set():
                raise Abandoned()
            sent = os.sendfile(fd_out, fd_in, offset, min(CHUNK, size - offset))
            if sent == 0:
                break
            offset += sent
        return None


PART = re.compile(r"[0-9]+-[0-9a-f]{8}-[0-9]+\.part")  # how a Mover names its staging files


def is_staging_folder(folder: str) -> bool:
    """Whether ``folder`` (below a root) is a staging folder: the root's, or that of a folder
    below it that is a filesystem of its own."""
    return folder == STAGING or folder.endswith(f"/{STAGING}")


def mounts_below(root: str) -> list[str]:
    """The folders below ``root`` that are mount points (relative to it), from
    /proc/self/mountinfo; none where it cannot be read."""
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    top = os.path.realpath(root).rstrip("/") + "/"
    found = []
    for line in lines:
        fields = line.split(b" ")
        if len(fields) < 5:
            continue
        # Spaces, tabs, newlines and backslashes in a mount point are written as octal escapes.
        point = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]), fields[4])
        path = os.fsdecode(point)
        if path.startswith(top):
            found.append(path[len(top) :])
    return sorted(set(found))


def sweep_staging(tree: Tree, *, kept_younger: float = 0.0) -> int:
    """Remove the partial copies a crash left in ``tree``'s staging folders (the root's, and
    those of folders below it that are mounts of their own): those written before their intent
    reached the ledger (the ledger's rows withdraw the others, recovery.py). Returns how many
    were removed.

    Only names a mover gives (``PID-TOKEN-N.part``) are touched: anything else there is not
    ours. Several daemons (each with its own source) may share a destination and so its staging
    folder: a partial copy whose name carries the pid of a process still alive is another
    daemon's copy in progress, and stays. ``kept_younger`` (seconds): a partial copy written to
    more recently stays too (a fleet's: a pid names a process of one host only, and another
    host's copy in progress may carry a pid that is free here)."""
    removed = 0
    for mount in ["", *mounts_below(tree.root)]:
        removed += _sweep(tree, f"{mount}/{STAGING}" if mount else STAGING, kept_younger)
    return removed


def _sweep(tree: Tree, staging: str, kept_younger: float = 0.0) -> int:
    removed = 0
    try:
        if not tree.knows(staging) and not _is_folder(tree.root, staging):
            return 0  # none, or a file in its way: only a copy needs one, and says so then
        with tree.folder(staging) as fd:
            for entry in list(os.scandir(fd)):
                if not PART.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                if _copy_in_progress(entry.name):
                    continue
                if kept_younger and time.time() - entry.stat(follow_symlinks=False).st_mtime < kept_younger:
                    continue  # another host's copy, maybe: still being written
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.name, dir_fd=fd)
                    removed += 1
    except (FileNotFoundError, NotAFolder):
        return 0
    return removed


def _is_folder(root: str, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(os.path.join(root, name), follow_symlinks=False).st_mode)
    except OSError:
        return False


def _copy_in_progress(name: str) -> bool:
    """Whether a staging file (named PID-TOKEN-N.part) belongs to another live process."""
    pid, _, _ = name.partition("-")
    return pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid))
