"""What the engine is told: its own settings, each declared once with its default and help.

The command line (``reorg_tui.config``) builds its flags, ``REORG_*`` variables, TOML keys and
``--help`` from these fields' metadata, adding only the knobs of the faces (logs, metrics, stats).
The engine reads nothing else: it never imports the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reorg_tui.engine.alerts import AlertRules
from reorg_tui.engine.kinds import CONFLICT_POLICIES, ConflictPolicy
from reorg_tui.engine.naming import Naming
from reorg_tui.engine.shard import Shard

DEFAULT_PATTERN = r"^(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})_"
DEFAULT_LAYOUT = "{year}/{month}/{day}"
DEFAULT_IGNORE = (".*", "*.part", "*.tmp", "*.crdownload", "*~")


def setting(
    default: Any,
    help: str,  # noqa: A002 - the word every option table uses
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] | None = None,
    repeat: bool = False,
    duration: bool = False,
) -> Any:
    """A settings field: its default, and what ``--help`` and validation need to know of it.
    ``repeat``: a list given by repeating the flag (values that may hold commas, such as URLs);
    ``duration``: seconds, also written 90s, 30m, 1h, 1d, 2w."""
    meta = {"help": help, "minimum": minimum, "maximum": maximum, "choices": choices}
    if repeat:
        meta["repeat"] = True
    if duration:
        meta["duration"] = True
    return field(default=default, metadata=meta)


def required(help: str) -> Any:  # noqa: A002
    """A field every run must be given (or, for the folders below, that the command line derives)."""
    return field(metadata={"help": help, "minimum": None, "maximum": None, "choices": None})


@dataclass(frozen=True)
class EngineSettings:
    source: Path = required("Folder to watch for dated files.")
    dest: Path = required("Root of the dated destination tree.")
    quarantine: Path = required("Folder for files that cannot be moved (default: DEST/_quarantine).")
    state_dir: Path = required(
        "Folder for the retry queue and lock info (default: ~/.local/state/reorg-tui/<source id>)."
    )
    workers: int = setting(4, "Threads that move files.", minimum=1, maximum=256)
    batch_size: int = setting(256, "Files handed to a worker at once.", minimum=1, maximum=100_000)
    max_retries: int = setting(5, "Retries of a failing move before quarantine.", minimum=0, maximum=1000)
    retry_base_delay: float = setting(1.0, "First retry delay in seconds.", minimum=0.0, maximum=86_400)
    retry_max_delay: float = setting(300.0, "Longest retry delay in seconds.", minimum=0.0, maximum=86_400)
    poll_interval: float = setting(15.0, "Seconds between full rescans.", minimum=0.05, maximum=86_400)
    settle: float = setting(
        2.0, "Seconds a file must hold still before it moves.", minimum=0.0, maximum=86_400
    )
    min_free_percent: float = setting(
        10.0,
        "Pause intake while the destination has less free space (percent).",
        minimum=0.0,
        maximum=99.0,
    )
    on_conflict: ConflictPolicy = setting(
        "rename", "What to do when the destination name exists.", choices=CONFLICT_POLICIES
    )
    layout: str = setting(DEFAULT_LAYOUT, "Destination folder template under DEST.")
    pattern: str = setting(DEFAULT_PATTERN, "Regex with named groups year, month, day.")
    ignore: tuple[str, ...] = setting(DEFAULT_IGNORE, "Comma-separated globs of names never touched.")
    recursive: bool = setting(False, "Also take files from source subfolders.")
    verify: bool = setting(False, "Checksum every copy across filesystems.")
    alert_error_rate: float = setting(
        0.05,
        "Alert when the error rate (failed or quarantined / files handled, over 1 min) reaches this "
        "ratio, 0 to 1 (0: off).",
        minimum=0.0,
        maximum=1.0,
    )
    alert_quarantine_count: int = setting(
        10, "Alert when this many files are in quarantine (0: off).", minimum=0, maximum=10**9
    )
    alert_quarantine_age: float = setting(
        86_400.0,
        "Alert when a file has waited this many seconds in quarantine (0: off).",
        minimum=0.0,
        maximum=10**9,
    )
    alert_disk_free_percent: float = setting(
        15.0, "Alert under this much free space, in percent (0: off).", minimum=0.0, maximum=99.0
    )
    alert_pending_age: float = setting(
        3600.0,
        "Alert when a file has waited this many seconds in the source: settling, retried or "
        "waiting for room (0: off).",
        minimum=0.0,
        maximum=10**9,
    )
    history_days: float = setting(
        90.0,
        "Days the ledger keeps finished transfers, for history and undo (0: for ever).",
        minimum=0.0,
        maximum=36_500,
    )
    shutdown_timeout: float = setting(
        5.0, "Seconds a stop may wait for in-flight moves.", minimum=0.1, maximum=3600
    )
    shard: Shard | None = setting(
        None,
        "Take only the files whose path below the source hashes to K of N (K/N, such as 0/4: "
        "run one instance for each K); the state is kept in STATE_DIR/shard-K-of-N.",
    )
    coordinator: str = setting(
        "",
        "PostgreSQL URL of a fleet's coordinator (postgresql://...): several instances, on one host "
        "or many, share this source. A secret: prefer the config file or the environment.",
    )
    claim_lease: float = setting(
        30.0,
        "With --coordinator: seconds a claim on a batch lasts without this instance's heartbeat "
        "(then another instance takes it over).",
        minimum=1.0,
        maximum=86_400,
    )

    def alert_rules(self) -> AlertRules:
        return AlertRules(
            self.alert_error_rate,
            self.alert_quarantine_count,
            self.alert_quarantine_age,
            self.alert_disk_free_percent,
            self.alert_pending_age,
        )

    def naming(self) -> Naming:
        return Naming(self.pattern, self.layout, self.ignore, self.shard)
