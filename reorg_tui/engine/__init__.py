"""The engine: plain Python, no Textual, no typer. Its public surface is what this module names;
the faces (the dashboard, the headless runner, the command line) import these, and reach below
only for what other processes read of a running instance: its published state (``publish``), its
control socket (``control``), its source lock (``lock``), whether its pid lives (``store``) and
its ledger, read-only (``ledger``: history).
"""

from reorg_tui.engine import events, planfile
from reorg_tui.engine.alerts import RULES as ALERT_RULES
from reorg_tui.engine.apply import EntryResult, Refusal, apply_plan
from reorg_tui.engine.engine import Engine
from reorg_tui.engine.errors import ExitCode, ReorgError
from reorg_tui.engine.failures import RunResult
from reorg_tui.engine.kinds import ConflictPolicy, Kind, State
from reorg_tui.engine.locate import default_state_dir, find_state_dir
from reorg_tui.engine.lock import AlreadyRunning
from reorg_tui.engine.metrics import (
    BUCKETS,
    ERROR_WINDOW,
    WINDOWS,
    Disk,
    QuarantineInfo,
    Queues,
    RetryItem,
    Snapshot,
    Timing,
    Totals,
)
from reorg_tui.engine.naming import NamingError
from reorg_tui.engine.operations import QuarantineOps, foreseen_failure
from reorg_tui.engine.plan import preview
from reorg_tui.engine.planfile import Plan, PlanError
from reorg_tui.engine.quarantine import QuarantineError, QuarantineStore, Record, open_store
from reorg_tui.engine.settings import EngineSettings, setting
from reorg_tui.engine.undo import (
    Skipped,
    SkipReason,
    Undo,
    UndoPlan,
    UndoResult,
    UndoSelection,
    open_undo,
    source_holder,
)
from reorg_tui.engine.watch import ScanCount

__all__ = [
    "SkipReason",
    "Skipped",
    "Undo",
    "UndoPlan",
    "UndoResult",
    "UndoSelection",
    "open_undo",
    "source_holder",
    "ALERT_RULES",
    "BUCKETS",
    "ERROR_WINDOW",
    "WINDOWS",
    "AlreadyRunning",
    "ConflictPolicy",
    "Disk",
    "Engine",
    "EngineSettings",
    "EntryResult",
    "ExitCode",
    "Kind",
    "NamingError",
    "Plan",
    "PlanError",
    "QuarantineError",
    "QuarantineInfo",
    "QuarantineOps",
    "QuarantineStore",
    "Queues",
    "Record",
    "Refusal",
    "ReorgError",
    "RetryItem",
    "RunResult",
    "ScanCount",
    "Snapshot",
    "State",
    "Timing",
    "Totals",
    "apply_plan",
    "open_store",
    "default_state_dir",
    "events",
    "find_state_dir",
    "foreseen_failure",
    "planfile",
    "preview",
    "setting",
]
