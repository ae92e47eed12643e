"""Settings: flags, then REORG_* environment variables, then a TOML file, then defaults.

Every setting is declared once in ``FIELDS``: its type, default, bounds, environment variable and
help text.  The command line builds its ``--help`` from the same table, so the two never drift.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reorg_tui.engine.alerts import AlertRules
from reorg_tui.engine.naming import Naming, NamingError

ENV_PREFIX = "REORG_"
CONFLICT_POLICIES = ("rename", "skip", "dedupe", "quarantine")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
DEFAULT_PATTERN = r"^(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})_"
DEFAULT_LAYOUT = "{year}/{month}/{day}"
DEFAULT_IGNORE = (".*", "*.part", "*.tmp", "*.crdownload", "*~")


class ConfigError(Exception):
    """A user's mistake in the settings: reported as one line, exit code 2."""


@dataclass(frozen=True)
class Field:
    name: str
    kind: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None

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
        return {Path: "DIR", int: "N", float: "SECONDS", tuple: "GLOBS", str: "TEXT"}.get(self.kind, "X")

    def help_text(self) -> str:
        default = self.default
        if isinstance(default, tuple):
            default = ",".join(default)
        shown = "none" if default is None else str(default)
        return f"{self.help} [default: {shown}; env: {self.env}]"


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("source", Path, None, "Folder to watch for dated files."),
        Field("dest", Path, None, "Root of the dated destination tree."),
        Field(
            "quarantine",
            Path,
            None,
            "Folder for files that cannot be moved (default: DEST/_quarantine).",
        ),
        Field(
            "state_dir",
            Path,
            None,
            "Folder for the retry queue and lock info (default: ~/.local/state/reorg-tui/<source id>).",
        ),
        Field("workers", int, 4, "Threads that move files.", 1, 256),
        Field("batch_size", int, 256, "Files handed to a worker at once.", 1, 100_000),
        Field("max_retries", int, 5, "Retries of a failing move before quarantine.", 0, 1000),
        Field("retry_base_delay", float, 1.0, "First retry delay in seconds.", 0.0, 86_400),
        Field("retry_max_delay", float, 300.0, "Longest retry delay in seconds.", 0.0, 86_400),
        Field("poll_interval", float, 15.0, "Seconds between full rescans.", 0.05, 86_400),
        Field("settle", float, 2.0, "Seconds a file must hold still before it moves.", 0.0, 86_400),
        Field(
            "min_free_percent",
            float,
            10.0,
            "Pause intake while the destination has less free space (percent).",
            0.0,
            99.0,
        ),
        Field(
            "on_conflict",
            str,
            "rename",
            "What to do when the destination name exists.",
            choices=CONFLICT_POLICIES,
        ),
        Field("layout", str, DEFAULT_LAYOUT, "Destination folder template under DEST."),
        Field("pattern", str, DEFAULT_PATTERN, "Regex with named groups year, month, day."),
        Field("ignore", tuple, DEFAULT_IGNORE, "Comma-separated globs of names never touched."),
        Field("recursive", bool, False, "Also take files from source subfolders."),
        Field("verify", bool, False, "Checksum every copy across filesystems."),
        Field("log_level", str, "INFO", "Log level.", choices=LOG_LEVELS),
        Field("log_format", str, "text", "Log format.", choices=LOG_FORMATS),
        Field("stats_interval", float, 60.0, "Seconds between summary log lines.", 0.1, 86_400),
        Field(
            "alert_error_rate",
            float,
            0.05,
            "Alert when failed/attempts over 1 min reaches this (0: off).",
            0.0,
            1.0,
        ),
        Field(
            "alert_quarantine_count",
            int,
            10,
            "Alert when this many files are in quarantine (0: off).",
            0,
            10**9,
        ),
        Field(
            "alert_quarantine_age",
            float,
            86_400.0,
            "Alert when a file has waited this many seconds in quarantine (0: off).",
            0.0,
            10**9,
        ),
        Field(
            "alert_disk_free_percent", float, 15.0, "Alert under this much free space (0: off).", 0.0, 99.0
        ),
        Field("metrics_port", int, 0, "Serve Prometheus metrics on this port (0: off).", 0, 65535),
        Field("metrics_addr", str, "127.0.0.1", "Address the metrics endpoint binds to."),
        Field(
            "shutdown_timeout",
            float,
            5.0,
            "Seconds a stop may wait for in-flight moves.",
            0.1,
            3600,
        ),
    )
}


@dataclass(frozen=True)
class Settings:
    source: Path
    dest: Path
    quarantine: Path
    state_dir: Path
    workers: int = 4
    batch_size: int = 256
    max_retries: int = 5
    retry_base_delay: float = 1.0
    retry_max_delay: float = 300.0
    poll_interval: float = 15.0
    settle: float = 2.0
    min_free_percent: float = 10.0
    on_conflict: str = "rename"
    layout: str = DEFAULT_LAYOUT
    pattern: str = DEFAULT_PATTERN
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    recursive: bool = False
    verify: bool = False
    log_level: str = "INFO"
    log_format: str = "text"
    stats_interval: float = 60.0
    alert_error_rate: float = 0.05
    alert_quarantine_count: int = 10
    alert_quarantine_age: float = 86_400.0
    alert_disk_free_percent: float = 15.0
    metrics_port: int = 0
    metrics_addr: str = "127.0.0.1"
    shutdown_timeout: float = 5.0

    def alert_rules(self) -> AlertRules:
        return AlertRules(
            self.alert_error_rate,
            self.alert_quarantine_count,
            self.alert_quarantine_age,
            self.alert_disk_free_percent,
        )

    def naming(self) -> Naming:
        return Naming(self.pattern, self.layout, self.ignore)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


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
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
        elif field.kind is tuple:
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            value = tuple(str(i).strip() for i in items if str(i).strip())
        elif field.kind is Path:
            if not str(raw).strip():
                raise ValueError
            value = Path(os.path.expanduser(str(raw)))
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


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder, not a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    table = data.get("reorg-tui", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [reorg-tui] must be a table")
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        out[name] = value
    return out


def default_state_dir(source: Path) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    digest = hashlib.sha256(os.fsencode(source)).hexdigest()[:12]
    label = re.sub(r"[^A-Za-z0-9._-]", "_", source.name)[:40] or "root"
    return Path(base) / "reorg-tui" / f"{label}-{digest}"


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
        if flags.get(name) is not None:
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
    if values["quarantine"] is None:
        values["quarantine"] = dest / "_quarantine"
    values["quarantine"] = Path(os.path.realpath(values["quarantine"]))
    if values["state_dir"] is None:
        values["state_dir"] = default_state_dir(source)
    settings = Settings(**values)
    validate(settings)
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


def validate(settings: Settings) -> None:
    """Everything that can be checked before a file is touched."""
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
    _check_folder("quarantine", quarantine, create_ok=True)
    _check_folder("state folder", settings.state_dir, create_ok=True)
    if settings.retry_max_delay < settings.retry_base_delay:
        raise ConfigError("--retry-max-delay must not be below --retry-base-delay")
    try:
        settings.naming()
    except NamingError as exc:
        raise ConfigError(str(exc)) from None
