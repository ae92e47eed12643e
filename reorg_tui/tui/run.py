"""Starting the dashboard from the command line."""

from __future__ import annotations

import sys

from reorg_tui import logs
from reorg_tui.config import ConfigError, Settings
from reorg_tui.engine.engine import Engine
from reorg_tui.tui.app import ReorgApp
from reorg_tui.tui.bridge import EngineHost


def run_dashboard(settings: Settings, quit_after: float | None = None) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConfigError("the dashboard needs a terminal; use --headless under a supervisor or in scripts")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.state_dir / "dashboard.log"
    # The terminal belongs to the dashboard: log records go to a file; events go to the panes.
    with open(log_path, "a", encoding="utf-8") as log_file:
        logs.setup(settings.log_level, settings.log_format, stream=log_file)
        app = ReorgApp(EngineHost(Engine(settings)), quit_after=quit_after)
        code = app.run()
    return code if isinstance(code, int) else app.return_code or 0
