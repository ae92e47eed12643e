"""A self-contained demo: a sandbox fed with generated files, some of which fail on purpose."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from reorg_tui import sandbox
from reorg_tui.config import Settings
from reorg_tui.engine import ExitCode

# Names that exercise each path: good dates, a date that does not exist, names that are not
# taken, hidden and partial files, and names that collide with files already at the destination.
_WORDS = ("invoice", "scan", "report", "photo", "log", "backup", "receipt", "notes")


def make_sandbox(root: Path) -> Settings:
    for name in ("source", "dest", "quarantine", "state"):
        (root / name).mkdir(parents=True, exist_ok=True)
    return Settings(
        source=root / "source",
        dest=root / "dest",
        quarantine=root / "quarantine",
        state_dir=root / "state",
        workers=2,
        settle=0.5,
        poll_interval=2.0,
        retry_base_delay=0.5,
        retry_max_delay=4.0,
        max_retries=5,
        stats_interval=5.0,
    )


class Feeder:
    """Writes files into the source at a steady rate, with a share of troublemakers."""

    def __init__(self, settings: Settings, seed: int = 7) -> None:
        self.settings = settings
        self.rng = random.Random(seed)
        self.count = 0
        self.base = dt.date(2026, 1, 1)
        # A regular file where a date folder should be: every file for that day fails for good.
        blocked = settings.dest / "2026" / "02"
        blocked.mkdir(parents=True, exist_ok=True)
        (blocked / "13").write_text("a file where a folder should be\n")
        # A folder that refuses new files part of the time: its files wait in the retry queue,
        # then either get through or, after their retries, go to the quarantine.
        self.flaky = settings.dest / "2026" / "01" / "15"
        self.flaky.mkdir(parents=True, exist_ok=True)
        self.flaky_locked = False

    def name(self) -> str:
        self.count += 1
        n, roll = self.count, self.rng.random()
        word = self.rng.choice(_WORDS)
        if roll < 0.03:
            return f"2026-02-30_{word}-{n}.txt"  # no such date: quarantined at once
        if roll < 0.06:
            return f"notes-{n}.txt"  # no date: ignored
        if roll < 0.08:
            return f".hidden-{n}"  # hidden: ignored
        if roll < 0.10:
            return f"2026-02-13_{word}-{n}.txt"  # blocked day: quarantined
        if roll < 0.15:
            return f"2026-01-01_{word}.txt"  # collides with earlier ones: renamed "(1)", "(2)"...
        if roll < 0.20:
            return f"2026-01-15_{word}-{n}.txt"  # the flaky folder: retried
        day = self.base + dt.timedelta(days=self.rng.randrange(120))
        return f"{day.isoformat()}_{word}-{n}.txt"

    def write(self, count: int) -> None:
        for _ in range(count):
            path = self.settings.source / self.name()
            path.write_bytes(self.rng.randbytes(self.rng.randrange(64, 64 * 1024)))

    def set_flaky(self, locked: bool) -> None:
        """Lock or unlock the flaky folder: chattr +i as root (who ignores modes), else chmod."""
        if os.geteuid() == 0:
            flag = "+i" if locked else "-i"
            done = subprocess.run(["chattr", flag, str(self.flaky)], capture_output=True).returncode == 0
            if done:
                self.flaky_locked = locked
                return
        with contextlib.suppress(OSError):
            self.flaky.chmod(0o555 if locked else 0o755)
            self.flaky_locked = locked

    def run(self, rate: float, stop: threading.Event) -> None:
        interval = 1.0 / max(rate, 0.01)
        ticks = 0
        self.set_flaky(True)  # at once: the retry queue has something to show from the start
        while not stop.wait(interval):
            self.write(1)
            ticks += 1
            if ticks % max(1, int(12 * rate)) == 0:  # every ~12 s, flip the flaky folder
                self.set_flaky(not self.flaky_locked)


class Ended(BaseException):
    """A SIGTERM or SIGHUP before the face took the signals over: the demo ends, cleaned up."""


def _end(signum: int, frame: FrameType | None) -> None:
    raise Ended(signum)


def run_demo(
    directory: Path | None, *, rate: float, backlog: int, duration: float, headless: bool = False
) -> int:
    """However it ends (q, Ctrl-C, SIGTERM, SIGHUP, its terminal closing) the demo undoes its lock
    on the flaky folder and, unless ``directory`` was given, removes its sandbox; one that a
    killed demo left is removed by the next (sandbox.py)."""
    ending = (signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, _end) for sig in ending}
    swept = sandbox.sweep() if directory is None else []
    if swept:
        print(f"removed {len(swept)} stale demo sandbox(es) in {swept[0].parent}", file=sys.stderr)
    root = sandbox.make() if directory is None else directory
    feeder: Feeder | None = None
    stop = threading.Event()
    feeding: threading.Thread | None = None
    try:
        settings = make_sandbox(root)
        feeder = Feeder(settings)
        feeder.write(backlog)
        feeding = threading.Thread(target=feeder.run, args=(rate, stop), daemon=True)
        feeding.start()
        if headless:
            from reorg_tui.headless import run_headless

            if duration > 0:
                timer = threading.Timer(duration, stop.set)
                timer.daemon = True  # a stop before the duration is up must not wait for it
                timer.start()
            print(f"demo sandbox: {root}", flush=True)
            return run_headless(settings, stop=stop, hangup_stops=True)
        from reorg_tui.tui.run import run_dashboard

        return run_dashboard(settings, quit_after=duration or None)
    except Ended:
        return ExitCode.OK
    finally:
        for sig in (*ending, signal.SIGINT):  # the clean-up is not to be cut short
            signal.signal(sig, signal.SIG_IGN)
        stop.set()
        if feeding is not None:
            feeding.join(timeout=5)
        if feeder is not None:
            feeder.set_flaky(False)  # never leave a locked folder behind
        if directory is None and not sandbox.remove(root):
            print(f"reorg-tui: could not remove the demo sandbox {root}", file=sys.stderr)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.signal(signal.SIGINT, signal.default_int_handler)
