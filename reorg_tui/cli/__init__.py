"""The command line: the typer app, its commands wired in, and the entry point.

Every expected failure ends as one line on stderr and its exit code (a user's mistake: 2), never a
traceback. The commands live in this package's modules: run (the root command and demo), ops
(status, config), quarantine, apply, history, undo, bench; options holds the settings options they
share.
"""

from __future__ import annotations

import os

import typer

from reorg_tui import stdio
from reorg_tui.cli import apply, bench, history, ops, quarantine, run, undo
from reorg_tui.engine import ExitCode, ReorgError
from reorg_tui.names import safe

EPILOG = (
    "Exit codes: 0 ok; 1 --once left files quarantined or unmoved (bench: a file did not arrive); "
    "2 bad settings or usage (a state folder another user could write included); 3 another instance is "
    "processing the source, or uses the state folder; 4 no such quarantined file; "
    "5 the source, destination, quarantine or state folder was replaced while running (start again); "
    "70 internal error."
)
QUARANTINE_EPILOG = (
    "Exit codes: 0 ok; 1 an operation failed on the filesystem, or the file is gone; 2 bad settings or "
    "usage, or the running instance refused; 4 no such quarantined file; 70 internal error."
)
CONFIG_EPILOG = (
    "Exit codes: 0 ok; 2 bad settings or usage, or a folder or file name the printed file's format "
    "cannot carry; 70 internal error."
)

app = typer.Typer(
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Move date-named files (YYYY-MM-DD_name) from a source folder into DEST/YYYY/MM/DD/.",
    epilog=EPILOG,
)
app.callback(invoke_without_command=True)(run.main_command)
app.command()(run.demo)
app.command()(bench.bench)
app.command()(ops.status)
app.command()(ops.reload)
app.command(epilog=apply.EPILOG)(apply.apply)
app.command(epilog=history.EPILOG)(history.history)
app.command(epilog=undo.EPILOG)(undo.undo)
app.add_typer(quarantine.app, name="quarantine", epilog=QUARANTINE_EPILOG)
app.add_typer(ops.config_app, name="config", epilog=CONFIG_EPILOG)


def main(argv: list[str] | None = None) -> int:
    """Entry point: turns every expected failure into one line and an exit code."""
    stdio.guard()  # before anything is opened: no file may become a closed stdin, stdout or stderr
    try:
        result = app(args=argv, prog_name="reorg-tui", standalone_mode=False)
    except ReorgError as exc:
        return _fail(str(exc), exc.exit_code)
    except typer.TyperException as exc:  # typer's usage errors (it vendors click as typer._click)
        return _fail(exc.format_message().replace("\n", " "), ExitCode.USAGE)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", ExitCode.LEFT_BEHIND)
    except (KeyboardInterrupt, typer.Abort):
        return _fail("interrupted", ExitCode.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, not a traceback
        if os.environ.get("REORG_DEBUG"):
            raise
        return _fail(
            f"internal error: {type(exc).__name__}: {exc} (set REORG_DEBUG=1 for details)", ExitCode.INTERNAL
        )
    return result if isinstance(result, int) else 0


def _fail(message: str, code: int) -> int:
    stdio.say(f"reorg-tui: error: {safe(message)}")
    return code
