"""The engine: plain Python, no Textual, no typer. Its public surface is what this module names;
the faces (the dashboard, the headless runner, the command line) import these, and reach below
only for what other processes read of a running instance: its published state (``publish``), its
control socket (``control``), its source lock (``lock``), whether its pid lives (``store``) and
its ledger, read-only (``ledger``: history).

Names are imported when first used (PEP 562): a command that needs the quarantine does not
load the watcher, the engine's threads or the plan file, and starts in half the time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        LogHealth,
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
    from reorg_tui.engine.quarantine import (
        QuarantineError,
        QuarantineReader,
        QuarantineStore,
        ReadOnlyQuarantine,
        Record,
        open_store,
    )
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

# name -> (module, attribute in it; None: the module itself)
_WHERE: dict[str, tuple[str, str | None]] = {
    "events": ("reorg_tui.engine.events", None),
    "planfile": ("reorg_tui.engine.planfile", None),
    "ALERT_RULES": ("reorg_tui.engine.alerts", "RULES"),
    "EntryResult": ("reorg_tui.engine.apply", "EntryResult"),
    "Refusal": ("reorg_tui.engine.apply", "Refusal"),
    "apply_plan": ("reorg_tui.engine.apply", "apply_plan"),
    "Engine": ("reorg_tui.engine.engine", "Engine"),
    "ExitCode": ("reorg_tui.engine.errors", "ExitCode"),
    "ReorgError": ("reorg_tui.engine.errors", "ReorgError"),
    "RunResult": ("reorg_tui.engine.failures", "RunResult"),
    "ConflictPolicy": ("reorg_tui.engine.kinds", "ConflictPolicy"),
    "Kind": ("reorg_tui.engine.kinds", "Kind"),
    "State": ("reorg_tui.engine.kinds", "State"),
    "default_state_dir": ("reorg_tui.engine.locate", "default_state_dir"),
    "find_state_dir": ("reorg_tui.engine.locate", "find_state_dir"),
    "AlreadyRunning": ("reorg_tui.engine.lock", "AlreadyRunning"),
    "BUCKETS": ("reorg_tui.engine.metrics", "BUCKETS"),
    "ERROR_WINDOW": ("reorg_tui.engine.metrics", "ERROR_WINDOW"),
    "WINDOWS": ("reorg_tui.engine.metrics", "WINDOWS"),
    "Disk": ("reorg_tui.engine.metrics", "Disk"),
    "LogHealth": ("reorg_tui.engine.metrics", "LogHealth"),
    "QuarantineInfo": ("reorg_tui.engine.metrics", "QuarantineInfo"),
    "Queues": ("reorg_tui.engine.metrics", "Queues"),
    "RetryItem": ("reorg_tui.engine.metrics", "RetryItem"),
    "Snapshot": ("reorg_tui.engine.metrics", "Snapshot"),
    "Timing": ("reorg_tui.engine.metrics", "Timing"),
    "Totals": ("reorg_tui.engine.metrics", "Totals"),
    "NamingError": ("reorg_tui.engine.naming", "NamingError"),
    "QuarantineOps": ("reorg_tui.engine.operations", "QuarantineOps"),
    "foreseen_failure": ("reorg_tui.engine.operations", "foreseen_failure"),
    "preview": ("reorg_tui.engine.plan", "preview"),
    "Plan": ("reorg_tui.engine.planfile", "Plan"),
    "PlanError": ("reorg_tui.engine.planfile", "PlanError"),
    "QuarantineError": ("reorg_tui.engine.quarantine", "QuarantineError"),
    "QuarantineStore": ("reorg_tui.engine.quarantine", "QuarantineStore"),
    "QuarantineReader": ("reorg_tui.engine.quarantine", "QuarantineReader"),
    "ReadOnlyQuarantine": ("reorg_tui.engine.quarantine", "ReadOnlyQuarantine"),
    "Record": ("reorg_tui.engine.quarantine", "Record"),
    "open_store": ("reorg_tui.engine.quarantine", "open_store"),
    "EngineSettings": ("reorg_tui.engine.settings", "EngineSettings"),
    "setting": ("reorg_tui.engine.settings", "setting"),
    "Skipped": ("reorg_tui.engine.undo", "Skipped"),
    "SkipReason": ("reorg_tui.engine.undo", "SkipReason"),
    "Undo": ("reorg_tui.engine.undo", "Undo"),
    "UndoPlan": ("reorg_tui.engine.undo", "UndoPlan"),
    "UndoResult": ("reorg_tui.engine.undo", "UndoResult"),
    "UndoSelection": ("reorg_tui.engine.undo", "UndoSelection"),
    "open_undo": ("reorg_tui.engine.undo", "open_undo"),
    "source_holder": ("reorg_tui.engine.undo", "source_holder"),
    "ScanCount": ("reorg_tui.engine.watch", "ScanCount"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value  # found once; later lookups do not come here
    return value


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
    "LogHealth",
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
    "QuarantineReader",
    "ReadOnlyQuarantine",
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
