"""For operators: ``status`` of a running instance, and ``config supervisord|systemd``."""

from __future__ import annotations

import json
import os
import pwd
import re
from pathlib import Path
from typing import Any

import typer

from reorg_tui.cli.options import config_option, layered, shard_option, state_dir_option, with_settings
from reorg_tui.config import FIELDS, ConfigError, default_state_dir, find_state_dir, load, resolve
from reorg_tui.deploy import Deployment, supervisord, systemd
from reorg_tui.engine.locate import shard_state_dir
from reorg_tui.engine.shard import Shard

config_app = typer.Typer(help="Print deployment files that match the settings given.")


SOURCE_OPTION = typer.Option(None, "--source", "-s", help=FIELDS["source"].help_text())


def instance_state_dir(
    ctx: typer.Context,
    source: str | None,
    state_dir: str | None,
    config: Path | None,
    shard: str | None = None,
) -> tuple[Path, Path | None, Shard | None]:
    """The state folder of the instance (or of its --shard) on a source, running or not, that
    source (resolved; None where only --state-dir was given) and the shard: from --source alone,
    even if it was started with --state-dir (see engine/locate.py)."""
    flags = {"source": source, "state_dir": state_dir, "shard": shard}
    given, config_file = layered(ctx, flags, config)
    values = resolve(given, config_file=config_file, required=())
    folder, where, part = values["state_dir"], values["source"], values["shard"]
    if where is None:
        if folder is None:
            raise ConfigError("--source (or --state-dir) is required to find the running instance")
        return shard_state_dir(folder, part), None, part
    where = Path(os.path.realpath(where))
    return find_state_dir(where, folder, part), where, part


def status(
    ctx: typer.Context,
    source: str = SOURCE_OPTION,
    state_dir: str = state_dir_option(),
    shard: str = shard_option(),
    config: Path = config_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    start_timeout: float | None = typer.Option(
        None,
        "--start-timeout",
        min=0.0,
        metavar="SECONDS",
        help="How long a start-up is reported as starting (exit 1) before it counts as down "
        "(exit 2). Default 300.",
    ),
    coordinator: str = typer.Option(
        None,
        "--coordinator",
        metavar="URL",
        help="Every instance of the fleet on this coordinator (on --source only, if given): host, "
        "pid, state, rate, last seen; exit by the worst. [env: REORG_COORDINATOR]",
    ),
) -> None:
    """Health of the instance running on this source (found from --source alone, even if it was
    started with --state-dir). Exit 0 healthy; 1 degraded: starting, an alert, a pause for disk,
    an operator's pause with files waiting, files in the quarantine, or a log that cannot be
    written, or (sharded) another shard not running; 2 not running, stale, or starting for
    longer than --start-timeout. With --shard (or on a source that shards hold), every shard of
    N is checked."""
    from reorg_tui.status import START_TIMEOUT, check

    timeout = START_TIMEOUT if start_timeout is None else start_timeout
    given, config_file = layered(ctx, {"source": source, "coordinator": coordinator}, config)
    url = resolve(given, config_file=config_file, required=())["coordinator"]
    if url:
        from reorg_tui.engine.ledger_pg import check_url
        from reorg_tui.fleet_status import check_fleet

        check_url(url)
        named = resolve(given, config_file=config_file, required=())["source"]
        fleet = check_fleet(url, os.path.realpath(named) if named else None, timeout)
        typer.echo(json.dumps(fleet.to_dict(), indent=1) if as_json else "\n".join(fleet.lines()))
        raise typer.Exit(fleet.code)
    folder, where, part = instance_state_dir(ctx, source, state_dir, config, shard)
    health = check(folder, source=where, start_timeout=timeout, shard=part)
    typer.echo(json.dumps(health.to_dict(), indent=1) if as_json else health.line)
    raise typer.Exit(health.code)


def _deployment(
    ctx: typer.Context, flags: dict[str, Any], config: Path | None, home: str | None = None
) -> Deployment:
    """The settings a printed file runs with; with a config file, which of them it must carry
    on its command line (those given as flags or REORG_* variables: the file has the rest)."""
    given, config_file = layered(ctx, flags, config)
    if config_file is None and os.environ.get("REORG_CONFIG"):
        config_file = Path(os.environ["REORG_CONFIG"])
    if config_file is not None:
        config_file = Path(os.path.abspath(config_file))
    settings = load(given, config_file=config_file)
    state_given = resolve(given, config_file=config_file, required=())["state_dir"] is not None
    if home is not None and not state_given:  # the service user's default, not ours
        own = shard_state_dir(default_state_dir(settings.source, home), settings.shard)
        settings = settings.with_(state_dir=own)
    pinned = {name for name, value in given.items() if value is not None}
    pinned |= {name for name, field in FIELDS.items() if os.environ.get(field.env)}
    default = default_state_dir(settings.source, home)
    # (a shard's locks are in the default folder, whatever its state folder)
    pointer = None if settings.state_dir == default and settings.shard is None else default
    return Deployment(settings, config_file, pinned, pointer)


@config_app.command("supervisord")
@with_settings
def config_supervisord(ctx: typer.Context, *, flags: dict[str, Any], config: Path | None) -> None:
    """A [program:reorg-tui] section for supervisord. With --config, its command line reads that
    file at each start (edit it, then restart); otherwise the settings are copied in."""
    typer.echo(supervisord(_deployment(ctx, flags, config)), nl=False)


_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")


@config_app.command("systemd")
@with_settings
def config_systemd(
    ctx: typer.Context,
    user: str = typer.Option(
        None,
        "--user",
        metavar="NAME",
        help="Run the service as this user (a User= line; it must exist here).",
    ),
    *,
    flags: dict[str, Any],
    config: Path | None,
) -> None:
    """A systemd unit with Restart=on-failure and hardening that fits the folders (warnings on
    stderr say what it left out). With --config, ExecStart reads that file at each start."""
    home = None
    if user is not None:
        if not _USER_NAME.fullmatch(user):
            raise ConfigError(f"--user: {user!r} is not a user name")
        try:
            home = pwd.getpwnam(user).pw_dir
        except KeyError:
            raise ConfigError(
                f"--user: no user {user!r} on this machine (print the unit where it runs)"
            ) from None
    unit, warnings = systemd(_deployment(ctx, flags, config, home), user=user)
    for warning in warnings:
        typer.echo(f"reorg-tui: warning: {warning}", err=True)
    typer.echo(unit, nl=False)


def reload(
    ctx: typer.Context,
    source: str = SOURCE_OPTION,
    state_dir: str = state_dir_option(),
    shard: str = shard_option(),
    config: Path = config_option(),
) -> None:
    """Make the daemon on this source read its settings again (as SIGHUP does): what can change
    live applies at once, the rest is kept (a restart applies it); prints what changed."""
    from reorg_tui.engine.control import request

    folder, _, _ = instance_state_dir(ctx, source, state_dir, config, shard)
    typer.echo(request(folder, "reload", timeout=30.0))


_JOB = typer.Option(
    "reorg-tui", "--job", metavar="NAME", help="The Prometheus job that scrapes the daemons' metrics."
)


@config_app.command("prometheus-rules")
@with_settings
def config_prometheus_rules(
    ctx: typer.Context, job: str = _JOB, *, flags: dict[str, Any], config: Path | None
) -> None:
    """Prometheus alerting rules for the metrics (--metrics-port): daemon down or stale, error
    ratio, quarantine count, growth and age, the oldest waiting file, disk headroom; thresholds
    from the settings given, as the daemon's own alerts."""
    from reorg_tui.monitoring import prometheus_rules

    given, config_file = layered(ctx, flags, config)
    typer.echo(prometheus_rules(resolve(given, config_file=config_file, required=()), _job(job)), nl=False)


@config_app.command("grafana")
def config_grafana(job: str = _JOB) -> None:
    """A Grafana dashboard (JSON, to import) with the terminal's panes, from the same metrics."""
    from reorg_tui.monitoring import grafana_dashboard

    typer.echo(grafana_dashboard(_job(job)), nl=False)


def _job(job: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", job):
        raise ConfigError(f"--job: {job!r} is not a job name (letters, digits, _ . : -)")
    return job
