"""The settings options, declared once in config.FIELDS and given to each command that runs or
describes an instance; and how flags given before a subcommand layer under those given after it."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Optional

import typer

from reorg_tui.config import FIELDS, is_given

SHORT = {"source": "-s", "dest": "-d", "workers": "-w"}


def _option(name: str) -> Any:
    field = FIELDS[name]
    flags = [field.flag] + ([SHORT[name]] if name in SHORT else [])
    if field.kind is bool:
        flags = [f"{field.flag}/--no-{field.flag[2:]}"]
    return typer.Option(None, *flags, help=field.help_text(), show_default=False, metavar=field.metavar)


def config_option() -> Any:
    return typer.Option(
        None,
        "--config",
        "-c",
        help="TOML file of settings (keys as the flags, without --). [env: REORG_CONFIG]",
    )


def state_dir_option() -> Any:
    """--state-dir for the commands that find a running (or stopped) instance by its source."""
    return typer.Option(
        None,
        "--state-dir",
        help="The instance's state folder, if it was started with one; found from --source otherwise. "
        "[env: REORG_STATE_DIR]",
    )


def shard_option() -> Any:
    """--shard for the commands that find an instance by its source: which shard's state."""
    return typer.Option(
        None,
        "--shard",
        metavar="K/N",
        help="The shard, if the instance runs with --shard (its state is in STATE_DIR/shard-K-of-N). "
        "[env: REORG_SHARD]",
    )


def _annotation(kind: type, repeat: bool) -> Any:
    if kind is bool:
        return Optional[bool]  # noqa: UP045
    return Optional[list[str]] if repeat else Optional[str]  # noqa: UP045


def _settings_parameters() -> list[inspect.Parameter]:
    """One keyword-only parameter per setting, then --config: what with_settings adds."""
    added = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=_option(name),
            annotation=_annotation(field.kind, field.repeat),
        )
        for name, field in FIELDS.items()
    ]
    config = inspect.Parameter(
        "config",
        inspect.Parameter.KEYWORD_ONLY,
        default=config_option(),
        annotation=Optional[Path],  # noqa: UP045
    )
    return [*added, config]


def with_settings(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command every settings option and ``--config``; the command receives them as
    ``flags`` (name -> value, None where not given) and ``config``.

    Typer makes a command's options only from its function's signature, and it has no public way
    to add options to a command. Written out, the 29 options would be about 120 lines, repeated
    on each of the three commands that take them (the root, config supervisord, config systemd)
    and kept in step with config.FIELDS by hand; a custom command class (``cls=``) would
    have to build typer's internal option objects. So this decorator shows typer the function's
    own parameters followed by the settings' (``__signature__``, which inspect and so typer
    honour), and on a call takes the settings out of the keyword arguments again."""
    own = [p for p in inspect.signature(func).parameters.values() if p.name not in ("flags", "config")]

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name) for name in FIELDS}
        return func(*args, flags=flags, config=kwargs.pop("config"), **kwargs)

    command.__signature__ = inspect.Signature(own + _settings_parameters())  # type: ignore[attr-defined]
    return command


def layered(
    ctx: typer.Context, flags: Mapping[str, Any], config: Path | None
) -> tuple[dict[str, Any], Path | None]:
    """A subcommand's settings flags over those given before it, and its --config over the
    root's: ``reorg-tui -s A status -s B`` looks at B. The root command keeps what it was given
    in ``ctx.obj`` (it always runs before its subcommand)."""
    before = ctx.find_root().obj
    given = {**before["flags"], **{name: value for name, value in flags.items() if is_given(value)}}
    return given, config or before["config"]
