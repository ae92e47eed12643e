"""``reorg-tui apply FILE``: carry out a plan that ``--dry-run --plan FILE`` wrote, exactly.

One line per entry on stdout (moved, or refused and why), a progress line on stderr every few
seconds for a long plan, and a summary line at the end. SIGINT and SIGTERM stop it between
entries (a copy in flight is abandoned, its source kept).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from reorg_tui.config import find_state_dir
from reorg_tui.engine import ExitCode

if TYPE_CHECKING:
    from reorg_tui.engine import EntryResult, Refusal
from reorg_tui.names import safe

EPILOG = (
    "Exit codes: 0 every entry carried out; 1 an entry was refused (changed since planning, gone, "
    "its target name taken, planned for the quarantine, or its move failed); 2 the plan file is "
    "missing, not a regular file, too large, not JSON, of another version or has a malformed entry "
    "(nothing was moved); 3 another instance is processing the plan's source; 130 interrupted; "
    "70 internal error."
)
PROGRESS_SECONDS = 2.0


def apply(
    plan_file: Path = typer.Argument(..., metavar="FILE", help="A plan written by --dry-run --plan FILE."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Check every entry as apply would and print the outcome; touch nothing."
    ),
    state_dir: Path = typer.Option(
        None,
        "--state-dir",
        envvar="REORG_STATE_DIR",
        show_envvar=False,
        help="Where the daemon on this source keeps its state, if it was started with one (its lock "
        "record goes there while apply holds the source). [env: REORG_STATE_DIR]",
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Across filesystems, check each copy's SHA-256 before removing its source."
    ),
) -> None:
    """Carry out a plan written by --dry-run --plan FILE: each file moved to exactly its planned
    target, never overwriting. An entry whose file changed since planning (device, inode, size,
    mtime or ctime), whose target name is taken, or that was planned for the quarantine is
    refused and reported; the rest go on. Holds the source's lock: not while a daemon runs on it."""
    from reorg_tui.engine import apply_plan, planfile  # here: the other commands start without them

    plan = planfile.read(plan_file)  # every field checked before anything is touched
    folder = find_state_dir(Path(plan.source), state_dir)
    reporter = _Reporter(len(plan.entries), dry_run)
    with _stopped_by_signals() as stop:
        apply_plan(plan, folder, reporter, dry_run=dry_run, verify=verify, stop=stop)
    typer.echo(reporter.summary(plan_file))
    if stop.is_set():
        raise typer.Exit(ExitCode.INTERRUPTED)
    raise typer.Exit(ExitCode.OK if not reporter.refused else ExitCode.LEFT_BEHIND)


class _Reporter:
    """Prints each entry's outcome as it comes and counts them for the summary."""

    def __init__(self, total: int, dry_run: bool) -> None:
        self.total = total
        self.dry_run = dry_run
        self.done = 0
        self.refused: Counter[Refusal] = Counter()
        self.seen = 0
        self.next_progress = time.monotonic() + PROGRESS_SECONDS

    def __call__(self, result: EntryResult) -> None:
        self.seen += 1
        source = safe(result.source)
        if result.refusal is None:
            self.done += 1
            verb = "would move" if self.dry_run else str(result.kind)
            typer.echo(f"{verb} {source} -> {safe(result.target)}")
        else:
            self.refused[result.refusal] += 1
            detail = f" ({safe(result.detail)})" if result.detail else ""
            verb = "would refuse" if self.dry_run else "refused"
            typer.echo(f"{verb} {source}: {result.refusal}{detail}")
        now = time.monotonic()
        if now >= self.next_progress and self.seen < self.total:
            self.next_progress = now + PROGRESS_SECONDS
            print(f"reorg-tui: apply: {self.seen}/{self.total} entries", file=sys.stderr, flush=True)

    def summary(self, plan_file: Path) -> str:
        reasons = ", ".join(f"{n} {why}" for why, n in self.refused.most_common())
        refused = sum(self.refused.values())
        why = f" ({reasons})" if reasons else ""
        if self.dry_run:
            return (
                f"dry run of {safe(str(plan_file))}: {self.done} would move, {refused} would be "
                f"refused{why}; nothing was touched"
            )
        return f"applied {safe(str(plan_file))}: {self.done} moved, {refused} refused{why}"


@contextmanager
def _stopped_by_signals() -> Iterator[threading.Event]:
    """An event that SIGINT and SIGTERM set (on the main thread; elsewhere, never)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
