"""Settings: flags, then REORG_* environment variables, then a TOML file, then defaults.

Every setting is declared once, as a field of ``EngineSettings`` (the engine's) or of ``Settings``
(the faces' own, added to it): its type, default, bounds and help text. ``FIELDS`` is built from
those fields; the command line builds its flags, ``--help`` and environment variables from it.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from reorg_tui.engine import (
    EngineSettings,
    NamingError,
    ReorgError,
    default_state_dir,
    find_state_dir,
    setting,
)
from reorg_tui.engine.inputfile import UnfitFile, read_regular
from reorg_tui.engine.locate import shard_state_dir
from reorg_tui.engine.shard import Shard, parse_shard

__all__ = ["FIELDS", "ConfigError", "Settings", "default_state_dir", "find_state_dir", "load", "resolve"]

ENV_PREFIX = "REORG_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
MAX_CONFIG_BYTES = 1024 * 1024  # a settings file is a few hundred bytes; this is no real one


class ConfigError(ReorgError):
    """A user's mistake in the settings: reported as one line, exit code 2."""


@dataclass(frozen=True)
class Settings(EngineSettings):
    """The engine's settings and the faces' own (logs, summary lines, the metrics endpoint).

    A ``Settings`` is an ``EngineSettings``: the faces hand it to the engine as it is, and the
    engine reads only its own fields."""

    log_level: str = setting("INFO", "Log level.", choices=LOG_LEVELS)
    log_format: str = setting("text", "Log format.", choices=LOG_FORMATS)
    stats_interval: float = setting(60.0, "Seconds between summary log lines.", minimum=0.1, maximum=86_400)
    metrics_port: int = setting(
        0, "Serve Prometheus metrics on this port (0: off).", minimum=0, maximum=65535
    )
    metrics_addr: str = setting("127.0.0.1", "Address the metrics endpoint binds to.")
    notify: tuple[str, ...] = setting(
        (),
        "Apprise URL to tell of alerts, disk pauses, a degraded watcher and a stop with files left "
        "(repeat for several). URLs hold secrets: prefer the config file or the environment.",
        repeat=True,
    )
    notify_digest: float = setting(
        0.0,
        "Instead of each event, notify a summary this often: 30m, 1h, 1d (0: off).",
        minimum=0.0,
        maximum=366 * 86_400,
        duration=True,
    )

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


@dataclass(frozen=True)
class Field:
    """One setting as the command line sees it: a flag, an environment variable, a TOML key."""

    name: str
    kind: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    repeat: bool = False  # given by repeating the flag; never split on commas
    duration: bool = False  # seconds, or 90s, 30m, 1h, 1d, 2w

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def metavar(self) -> str:
        if self.choices:
            return "|".join(c.lower() if self.name == "log_level" else c for c in self.choices)
        if self.name.endswith("_days"):
            return "DAYS"
        if self.duration:
            return "DURATION"
        if self.repeat:
            return "URL"
        if self.name.endswith("_percent"):
            return "PERCENT"
        if self.name.endswith("_rate"):
            return "RATIO"  # a fraction, 0 to 1: not a time
        kinds = {Path: "DIR", int: "N", float: "SECONDS", tuple: "GLOBS", str: "TEXT", Shard: "K/N"}
        return kinds.get(self.kind, "X")

    def help_text(self) -> str:
        default = self.default
        if isinstance(default, tuple):
            default = ",".join(default)
        shown = "none" if default is None else str(default)
        return f"{self.help} [default: {shown}; env: {self.env}]"


def _kind(hint: Any) -> type:
    """The plain type a setting's annotation names: Path, int, float, bool, tuple, str or Shard
    (``X | None``: X, a setting whose default is none)."""
    origin = get_origin(hint)
    if origin is Literal:
        return str
    if origin in (Union, types.UnionType):
        return _kind(next(arg for arg in get_args(hint) if arg is not type(None)))
    return origin or hint  # tuple[str, ...] -> tuple


def _fields() -> dict[str, Field]:
    hints = get_type_hints(Settings)
    table = {}
    for f in fields(Settings):
        default = None if f.default is MISSING else f.default
        table[f.name] = Field(f.name, _kind(hints[f.name]), default, **f.metadata)
    return table


FIELDS: dict[str, Field] = _fields()


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(field: Field, raw: Any, origin: str) -> Any:
    """Turn a raw value from the environment or TOML into the field's type, or say why not."""
    where = f"{field.flag} ({origin})"
    try:
        if field.kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if field.kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value: Any = int(raw)
        elif field.kind is float:
            if isinstance(raw, bool):
                raise ValueError
            value = parse_age(raw, where) if field.duration and isinstance(raw, str) else float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
        elif field.kind is tuple:
            whole = isinstance(raw, str) and field.repeat  # a URL may hold commas
            items = [raw] if whole else raw.split(",") if isinstance(raw, str) else list(raw)
            value = tuple(str(i).strip() for i in items if str(i).strip())
        elif field.kind is Path:
            if not str(raw).strip():
                raise ValueError
            value = Path(os.path.expanduser(str(raw)))
        elif field.kind is Shard:
            try:
                value = parse_shard(raw) if isinstance(raw, str) else parse_shard("")
            except ValueError as exc:
                raise ConfigError(f"{where}: {raw!r} {exc}") from None
        else:
            value = str(raw)
    except (TypeError, ValueError):
        kind = {bool: "true or false", int: "a whole number", float: "a number"}.get(field.kind, "a value")
        raise ConfigError(f"{where}: {raw!r} is not {kind}") from None
    if field.choices is not None:
        if field.name == "log_level":
            value = value.upper()
        if value not in field.choices:
            raise ConfigError(f"{where}: {raw!r} is not one of {', '.join(field.choices)}")
    if field.minimum is not None and value < field.minimum:
        raise ConfigError(f"{where}: {raw!r} is below the minimum {field.minimum:g}")
    if field.maximum is not None and value > field.maximum:
        raise ConfigError(f"{where}: {raw!r} is above the maximum {field.maximum:g}")
    return value


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_age(text: str, flag: str = "--older-than") -> float:
    """``90s``, ``30m``, ``12h``, ``1d``, ``2w`` (or plain seconds) -> seconds; ``flag`` names
    the option in an error."""
    raw = text.strip().lower()
    unit = raw[-1:] if raw[-1:] in _UNITS else "s"
    number = raw[:-1] if raw[-1:] in _UNITS else raw
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        raise ConfigError(f"{flag}: {text!r} is not an age such as 90s, 30m, 12h, 1d or 2w") from None
    if value < 0:
        raise ConfigError(f"{flag}: {text!r} is negative")
    if value != value or value == float("inf"):
        raise ConfigError(f"{flag}: {text!r} is not an age such as 90s, 30m, 12h, 1d or 2w")
    return value


def read_toml(path: Path) -> dict[str, Any]:
    try:
        # A FIFO, a device or a huge file named here would block or exhaust memory: refused.
        data = tomllib.loads(read_regular(path, MAX_CONFIG_BYTES).decode("utf-8"))
    except UnfitFile as exc:
        raise ConfigError(f"config file {exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    table = data.get("reorg-tui", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [reorg-tui] must be a table")
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            raise ConfigError(f"config file {path}: unknown setting {key!r}{_hint(key, value)}")
        out[name] = value
    return out


def _hint(key: str, value: Any) -> str:
    """What an unknown key in a config file was probably meant to be."""
    if isinstance(value, dict):
        return ": settings go at the top level or under [reorg-tui]"
    keys = [name.replace("_", "-") for name in FIELDS]
    close = difflib.get_close_matches(key.replace("_", "-").lower(), keys, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def is_given(value: Any) -> bool:
    """Whether a flag was given: a repeatable flag not given comes as an empty list."""
    return value is not None and value != []


def resolve(
    flags: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    required: tuple[str, ...] = ("source", "dest"),
) -> dict[str, Any]:
    """Merge the layers into plain values; check types and bounds, not the filesystem."""
    env = os.environ if env is None else env
    if config_file is None and env.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(env[ENV_PREFIX + "CONFIG"])
    from_file = read_toml(config_file) if config_file is not None else {}
    values: dict[str, Any] = {}
    for name, field in FIELDS.items():
        if is_given(flags.get(name)):
            values[name] = _convert(field, flags[name], "flag")
        elif env.get(field.env) not in (None, ""):
            values[name] = _convert(field, env[field.env], f"env {field.env}")
        elif name in from_file:
            values[name] = _convert(field, from_file[name], f"config {config_file}")
        else:
            values[name] = field.default
    for name in required:
        if values[name] is None:
            field = FIELDS[name]
            raise ConfigError(f"{field.flag} is required (or set {field.env})")
    for name in ("source", "dest", "quarantine", "state_dir"):
        if values[name] is not None:
            values[name] = Path(os.path.abspath(values[name]))
    return values


def load(
    flags: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build and validate the full settings for running the engine."""
    values = resolve(flags, env, config_file)
    source = Path(os.path.realpath(values["source"]))
    dest = Path(os.path.realpath(values["dest"]))
    values["source"], values["dest"] = source, dest
    named_quarantine = values["quarantine"] is not None
    if not named_quarantine:
        values["quarantine"] = dest / "_quarantine"
    values["quarantine"] = Path(os.path.realpath(values["quarantine"]))
    if values["state_dir"] is None:
        values["state_dir"] = default_state_dir(source)
    values["state_dir"] = shard_state_dir(values["state_dir"], values["shard"])
    settings = Settings(**values)
    validate(settings, make_quarantine=not named_quarantine)
    return settings


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _check_folder(label: str, path: Path, create_ok: bool) -> None:
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{label} {path} is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{label} {path} is not writable")
        return
    if not create_ok:
        raise ConfigError(f"{label} {path} does not exist")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{label} {path} does not exist and {parent} is not writable")


def validate(settings: Settings, *, make_quarantine: bool = True) -> None:
    """Everything that can be checked before a file is touched. ``make_quarantine``: the
    quarantine is the default under DEST, made if missing; one that was named (a flag, REORG_*,
    the config file) must exist, like the destination, so that a typo never scatters files into
    a new folder."""
    source, dest, quarantine = settings.source, settings.dest, settings.quarantine
    _check_folder("source", source, create_ok=False)
    _check_folder("destination", dest, create_ok=False)
    if source == dest:
        raise ConfigError(f"source and destination are the same folder: {source}")
    if _inside(dest, source):
        raise ConfigError(f"destination {dest} is inside the source {source}")
    if _inside(source, dest):
        raise ConfigError(f"source {source} is inside the destination {dest}")
    if _inside(quarantine, source):
        raise ConfigError(f"quarantine {quarantine} is inside the source {source}")
    if _inside(source, quarantine):
        raise ConfigError(f"source {source} is inside the quarantine {quarantine}")
    if quarantine == dest:
        raise ConfigError(f"quarantine and destination are the same folder: {dest}")
    _check_folder("quarantine", quarantine, create_ok=make_quarantine)
    _check_folder("state folder", settings.state_dir, create_ok=True)
    if settings.retry_max_delay < settings.retry_base_delay:
        raise ConfigError("--retry-max-delay must not be below --retry-base-delay")
    if settings.coordinator:
        from reorg_tui.engine.ledger_pg import check_url  # (imports no psycopg)

        check_url(settings.coordinator)
        if settings.shard is not None:
            raise ConfigError(
                "--shard does not go with --coordinator: a fleet shares out its source's files itself"
            )
    try:
        settings.naming()
    except NamingError as exc:
        raise ConfigError(f"{FIELDS[exc.setting].flag} {exc.detail}") from None
