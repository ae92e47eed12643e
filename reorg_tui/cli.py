"""The command line: settings, the headless runner, the demo and the quarantine commands.

Every user mistake ends as one line on stderr and exit code 2; never a traceback.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import humanize
import typer

from reorg_tui import __version__
from reorg_tui.config import FIELDS, ConfigError, default_state_dir, load, resolve
from reorg_tui.engine.errors import ExitCode, ReorgError
from reorg_tui.engine.quarantine import QuarantineStore, Record
from reorg_tui.names import safe

EPILOG = (
    "Exit codes: 0 ok; 1 --once left files quarantined or unmoved (bench: a file did not arrive); "
    "2 bad settings or usage; 3 another instance is processing the source; 4 no such quarantined file; "
    "70 internal error."
)

app = typer.Typer(
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Move date-named files (YYYY-MM-DD_name) from a source folder into DEST/YYYY/MM/DD/.",
    epilog=EPILOG,
)
quarantine_app = typer.Typer(help="Inspect, release or delete quarantined files.", epilog=EPILOG)
app.add_typer(quarantine_app, name="quarantine")

SHORT = {"source": "-s", "dest": "-d", "workers": "-w"}


def _opt(name: str) -> Any:
    field = FIELDS[name]
    flags = [field.flag] + ([SHORT[name]] if name in SHORT else [])
    if field.kind is bool:
        flags = [f"{field.flag}/--no-{field.flag[2:]}"]
    metavar = "PERCENT" if name.endswith("percent") else field.metavar
    return typer.Option(None, *flags, help=field.help_text(), show_default=False, metavar=metavar)


def _config_opt() -> Any:
    return typer.Option(
        None,
        "--config",
        "-c",
        help="TOML file of settings (keys as the flags, without --). [env: REORG_CONFIG]",
    )


def with_settings(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command every settings option (declared once, in config.FIELDS) and ``--config``;
    the command receives them as ``flags`` (only what was given) and ``config``."""
    own = [p for p in inspect.signature(func).parameters.values() if p.name not in ("flags", "config")]
    added = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=_opt(name),
            annotation=Optional[bool] if field.kind is bool else Optional[str],  # noqa: UP045
        )
        for name, field in FIELDS.items()
    ]
    added.append(
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            default=_config_opt(),
            annotation=Optional[Path],  # noqa: UP045
        )
    )

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name) for name in FIELDS}
        return func(*args, flags=flags, config=kwargs.pop("config"), **kwargs)

    command.__signature__ = inspect.Signature(own + added)  # type: ignore[attr-defined]
    return command


@app.callback(invoke_without_command=True)
@with_settings
def main_command(
    ctx: typer.Context,
    headless: bool = typer.Option(
        False, "--headless", help="Run without the dashboard (for supervisord, systemd)."
    ),
    once: bool = typer.Option(
        False, "--once", help="Headless: process what is in the source now, then exit."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print each planned move and touch nothing."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    *,
    flags: dict[str, Any],
    config: Path | None,
) -> None:
    """Without a command: run the engine (the dashboard, or --headless)."""
    ctx.obj = {"flags": flags, "config": config}
    if version:
        typer.echo(f"reorg-tui {__version__}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is not None:
        return
    settings = load(flags, config_file=config)
    if dry_run:
        from reorg_tui.headless import dry_run as plan

        raise typer.Exit(plan(settings))
    if not (headless or once):
        from reorg_tui.tui.run import run_dashboard  # Textual is imported only here

        raise typer.Exit(run_dashboard(settings))
    from reorg_tui.headless import run_headless

    raise typer.Exit(run_headless(settings, once=once))


@app.command()
def demo(
    directory: Path = typer.Option(
        None, "--dir", help="Where to make the sandbox (default: a new temporary folder)."
    ),
    rate: float = typer.Option(20.0, "--rate", help="Files fed into the source per second."),
    backlog: int = typer.Option(200, "--backlog", help="Files in the source before the engine starts."),
    duration: float = typer.Option(
        0.0, "--duration", help="Stop after this many seconds (0: until Ctrl-C or q)."
    ),
    headless: bool = typer.Option(False, "--headless", help="Show the log instead of the dashboard."),
) -> None:
    """Open the dashboard on a self-contained sandbox fed with generated files, some failing on purpose."""
    from reorg_tui.demo import run_demo

    raise typer.Exit(run_demo(directory, rate=rate, backlog=backlog, duration=duration, headless=headless))


@app.command()
def bench(
    directory: Path = typer.Option(
        None, "--dir", help="Where to make the workload (default: a temporary folder)."
    ),
    files: int = typer.Option(20_000, "--files", min=1, help="Files in the backlog."),
    size: int = typer.Option(100, "--size", min=0, help="Bytes per file."),
    cross: Path = typer.Option(
        None, "--cross", help="Put the destination here, on another filesystem, and compare with a copy loop."
    ),
    keep: bool = typer.Option(False, "--keep", help="Keep the workload folders afterwards."),
    rounds: int = typer.Option(
        3, "--rounds", min=1, help="Run both sides this many times, alternating; report medians."
    ),
    watch: float = typer.Option(
        0.0,
        "--watch",
        metavar="FILES_PER_S",
        help="Instead: feed a running daemon this many files/s; report latency.",
    ),
    idle: bool = typer.Option(
        False, "--idle", help="Instead: CPU of a daemon with nothing to do (--files ignored names)."
    ),
    dashboard: float = typer.Option(
        0.0,
        "--dashboard",
        metavar="FILES_PER_S",
        help="Instead: the dashboard's refreshes and key latency under load.",
    ),
    seconds: float = typer.Option(
        60.0, "--seconds", min=1, help="How long --watch feeds, or --idle measures."
    ),
) -> None:
    """Measure the engine against a raw loop in the same run; print files/s, ratio, memory, CPU."""
    _bench(directory, files, size, cross, keep, rounds, watch, idle, dashboard, seconds)


def _bench(
    directory: Path | None,
    files: int,
    size: int,
    cross: Path | None,
    keep: bool,
    rounds: int,
    watch: float,
    idle: bool,
    dashboard: float,
    seconds: float,
) -> None:
    from rich.console import Console

    from reorg_tui.bench import dashboard_load, idle_cpu, run_bench, table, watch_latency

    if watch or idle or dashboard:
        console = Console(stderr=True)
        if watch:
            figures = watch_latency(directory, watch, seconds, console)
        elif idle:
            figures = idle_cpu(directory, files, seconds, console)
        else:
            figures = dashboard_load(directory, dashboard, seconds, console)
        for key, value in figures.items():
            timed = key.startswith(("p50", "p95", "max", "settle")) or key in ("key p50", "key p95")
            shown = f"{value:.3f} s" if timed else f"{value:,.2f}"
            typer.echo(f"{key:>18}: {shown}")
        return

    for label, folder in (("--dir", directory), ("--cross", cross)):
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"{label} {folder} is not a folder")
    results = run_bench(directory, files, size, cross, keep, rounds=rounds)
    where = "across filesystems" if cross else "one filesystem"
    Console(width=None if sys.stdout.isatty() else 110).print(table(results, files, size, where))


@app.command()
@with_settings
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    *,
    flags: dict[str, Any],
    config: Path | None,
) -> None:
    """Health of the instance running on this source. Exit 0 healthy, 1 degraded, 2 not running or stale."""
    from reorg_tui.status import check

    values = _layered(ctx, flags, config, ())
    state_dir = values["state_dir"]
    if state_dir is None:
        if values["source"] is None:
            raise ConfigError("--source (or --state-dir) is required to find the running instance")
        state_dir = default_state_dir(Path(os.path.realpath(values["source"])))
    health = check(state_dir)
    typer.echo(json.dumps(health.to_dict(), indent=1) if as_json else health.line)
    raise typer.Exit(health.code)


config_app = typer.Typer(help="Print deployment files that match the settings given.", epilog=EPILOG)
app.add_typer(config_app, name="config")


@config_app.command("supervisord")
@with_settings
def config_supervisord(ctx: typer.Context, *, flags: dict[str, Any], config: Path | None) -> None:
    """A [program:reorg-tui] section for supervisord."""
    from reorg_tui.deploy import supervisord

    typer.echo(supervisord(load(_merged(ctx, flags), config_file=_config_of(ctx, config))), nl=False)


@config_app.command("systemd")
@with_settings
def config_systemd(ctx: typer.Context, *, flags: dict[str, Any], config: Path | None) -> None:
    """A systemd unit with Restart=on-failure and hardening."""
    from reorg_tui.deploy import systemd

    typer.echo(systemd(load(_merged(ctx, flags), config_file=_config_of(ctx, config))), nl=False)


def _root_obj(ctx: typer.Context) -> dict[str, Any]:
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, dict) else {"flags": {}, "config": None}


def _merged(ctx: typer.Context, flags: dict[str, Any]) -> dict[str, Any]:
    """Flags given after the command over those given before it."""
    return {**_root_obj(ctx)["flags"], **{k: v for k, v in flags.items() if v is not None}}


def _config_of(ctx: typer.Context, config: Path | None) -> Path | None:
    return config or _root_obj(ctx)["config"]


# ---- quarantine ---------------------------------------------------------------------------------


def _layered(
    ctx: typer.Context, overrides: dict[str, str | None], config: Path | None, required: tuple[str, ...]
) -> dict[str, Any]:
    """Settings for a subcommand: its own flags over those given before the subcommand."""
    return resolve(_merged(ctx, overrides), config_file=_config_of(ctx, config), required=required)


def _store(
    ctx: typer.Context, quarantine: str | None, dest: str | None, config: Path | None
) -> QuarantineStore:
    values = _layered(ctx, {"quarantine": quarantine, "dest": dest}, config, ())
    root = values["quarantine"]
    if root is None:
        if values["dest"] is None:
            raise ConfigError("--quarantine is required (or --dest, or set REORG_QUARANTINE)")
        root = values["dest"] / "_quarantine"
    if not root.is_dir():
        raise ConfigError(f"quarantine {root} does not exist")
    return QuarantineStore(root)


def _source(ctx: typer.Context, source: str | None, config: Path | None) -> Path:
    values = _layered(ctx, {"source": source}, config, ("source",))
    path = Path(os.path.realpath(values["source"]))
    if not path.is_dir():
        raise ConfigError(f"source {path} does not exist")
    return path


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_age(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``1d``, ``2w`` (or plain seconds) -> seconds."""
    raw = text.strip().lower()
    unit = raw[-1:] if raw[-1:] in _UNITS else "s"
    number = raw[:-1] if raw[-1:] in _UNITS else raw
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        raise ConfigError(f"--older-than: {text!r} is not an age such as 90s, 30m, 12h, 1d or 2w") from None
    if value < 0:
        raise ConfigError(f"--older-than: {text!r} is negative")
    return value


def _record_dict(store: QuarantineStore, record: Record) -> dict[str, Any]:
    return {**record.__dict__, "path": str(store.file_path(record)), "age_seconds": round(record.age, 3)}


_Q = typer.Option(None, "--quarantine", "-q", help=FIELDS["quarantine"].help_text())
_D = typer.Option(None, "--dest", "-d", help=FIELDS["dest"].help_text())
_S = typer.Option(None, "--source", "-s", help=FIELDS["source"].help_text())
_J = typer.Option(False, "--json", help="Print JSON for scripts.")


@quarantine_app.command("list")
def q_list(
    ctx: typer.Context,
    quarantine: str = _Q,
    dest: str = _D,
    config: Path = _config_opt(),
    older_than: str = typer.Option(
        None,
        "--older-than",
        metavar="AGE",
        help="Only files quarantined longer ago than this: 90s, 30m, 12h, 1d, 2w.",
    ),
    as_json: bool = _J,
) -> None:
    """List quarantined files, oldest first."""
    store = _store(ctx, quarantine, dest, config)
    records = store.list()
    if older_than is not None:
        limit = parse_age(older_than)
        records = [r for r in records if r.age >= limit]
    if as_json:
        typer.echo(json.dumps([_record_dict(store, r) for r in records], indent=1))
        return
    if not records:
        typer.echo(f"the quarantine {store.root} is empty")
        return
    for r in records:
        size, age = humanize.naturalsize(r.size, binary=True), humanize.naturaldelta(r.age)
        typer.echo(f"{r.id}  {size:>9}  {age:>12}  {safe(r.name)}  [{safe(r.reason)}]")
    total = sum(r.size for r in records)
    typer.echo(f"{len(records)} file(s), {humanize.naturalsize(total, binary=True)}")


@quarantine_app.command("show")
def q_show(
    ctx: typer.Context,
    item_id: str = typer.Argument(..., metavar="ID", help="The id shown by `quarantine list`."),
    quarantine: str = _Q,
    dest: str = _D,
    config: Path = _config_opt(),
    as_json: bool = _J,
) -> None:
    """Show one quarantined file: where it came from, where it was going, every error."""
    store = _store(ctx, quarantine, dest, config)
    record = store.get(item_id)
    if as_json:
        typer.echo(json.dumps(_record_dict(store, record), indent=1))
        return
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.quarantined_at))
    lines = [
        f"id:          {record.id}",
        f"file:        {safe(str(store.file_path(record)))}",
        f"original:    {safe(record.original)}",
        f"intended:    {safe(record.intended or '-')}",
        f"reason:      {safe(record.reason)}",
        f"attempts:    {record.attempts}",
        f"size:        {humanize.naturalsize(record.size, binary=True)}",
        f"quarantined: {when} ({humanize.naturaldelta(record.age)} ago)",
        "errors:",
        *(f"  - {safe(e)}" for e in record.errors),
    ]
    typer.echo("\n".join(lines))


@quarantine_app.command("release")
def q_release(
    ctx: typer.Context,
    item_ids: list[str] = typer.Argument(..., metavar="ID...", help="Ids shown by `quarantine list`."),
    quarantine: str = _Q,
    dest: str = _D,
    source: str = _S,
    config: Path = _config_opt(),
    as_json: bool = _J,
) -> None:
    """Put files back into the source, to go through the pipeline again (attempts reset)."""
    store = _store(ctx, quarantine, dest, config)
    root = _source(ctx, source, config)
    done = []
    for item_id in item_ids:
        path = store.release(item_id, root)
        done.append({"id": item_id, "released_to": path})
        if not as_json:
            typer.echo(f"released {item_id} -> {safe(path)}")
    if as_json:
        typer.echo(json.dumps(done, indent=1))


@quarantine_app.command("delete")
def q_delete(
    ctx: typer.Context,
    item_ids: list[str] = typer.Argument(..., metavar="ID...", help="Ids shown by `quarantine list`."),
    quarantine: str = _Q,
    dest: str = _D,
    config: Path = _config_opt(),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = _J,
) -> None:
    """Delete quarantined files and their records, for good."""
    store = _store(ctx, quarantine, dest, config)
    records = [store.get(i) for i in item_ids]
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError("refusing to delete without --yes when not at a terminal")
        names = ", ".join(safe(r.name) for r in records)
        typer.confirm(f"Delete {len(records)} file(s) for good: {names}?", abort=True)
    for record in records:
        store.delete(record.id)
        if not as_json:
            typer.echo(f"deleted {record.id} ({safe(record.name)})")
    if as_json:
        typer.echo(json.dumps([r.id for r in records]))


def main(argv: list[str] | None = None) -> int:
    """Entry point: turns every expected failure into one line and an exit code."""
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
    print(f"reorg-tui: error: {safe(message)}", file=sys.stderr)
    return code
