"""Deployment files printed from the settings in force, so they always match the flags.

Given a config file, the command line refers to it (``--config FILE``) and spells out only what
was given besides (flags, REORG_* variables): editing the file and restarting takes effect. The
systemd unit's hardening adapts to where the folders are: no private /tmp when one is under /tmp,
home folders left visible (read-only, the unit's own folders writable) when one is there.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Collection
from dataclasses import dataclass, fields
from pathlib import Path

from reorg_tui.config import FIELDS, ConfigError, Settings
from reorg_tui.deploy_syntax import (
    supervisord_command,
    supervisord_logfile,
    systemd_exec,
    systemd_paths,
    systemd_text,
)
from reorg_tui.names import safe

TMP_ROOTS = ("/tmp", "/var/tmp")
WATCHDOG_SECONDS = 30  # the daemon feeds it every 15 s (sdnotify.py)
HOME_ROOTS = ("/home", "/root", "/run/user")


@dataclass(frozen=True)
class Deployment:
    """What the printed file runs: the settings, the config file it reads (if any) and the
    settings given besides it, which the command line must carry."""

    settings: Settings
    config_file: Path | None = None
    pinned: Collection[str] = ()
    pointer_dir: Path | None = None  # the source's default state folder, where the daemon
    # records its --state-dir (engine/locate.py); None when that is the state folder itself


def command_line(dep: Deployment) -> list[str]:
    """The headless command for these settings: defaults left out; with a config file, only
    --config and the settings given besides it."""
    argv = [sys.executable, "-m", "reorg_tui", "--headless"]
    if dep.config_file is not None:
        argv += ["--config", str(dep.config_file)]
    for f in fields(Settings):
        value = getattr(dep.settings, f.name)
        field = FIELDS[f.name]
        if f.name == "log_format":
            value = "json"  # log shippers read one JSON object a line
        elif dep.config_file is not None and f.name not in dep.pinned:
            continue  # the daemon reads it from the file at each start
        elif value == field.default:
            continue
        elif f.name == "quarantine" and value == dep.settings.dest / "_quarantine":
            continue  # the default, made at the first start; a named one must exist
        if f.name == "state_dir" and dep.settings.shard is not None:
            value = value.parent  # the daemon keeps a shard's state in shard-K-of-N below it
        if field.repeat or f.name == "coordinator":  # --notify, --coordinator: URLs hold secrets
            raise ConfigError(
                f"{field.flag} URLs are secrets, not for a command line every user sees nor a "
                "world-readable unit: put them in the config file (mode 0600) and pass --config"
            )
        if field.kind is bool:
            argv.append(field.flag if value else f"--no-{field.flag[2:]}")
        elif field.kind is tuple:
            argv += [field.flag, ",".join(value)]
        else:
            argv += [field.flag, str(value)]
    return argv


def labelled(argv: list[str]) -> list[tuple[str, str]]:
    """Each argument with what it is, for a refusal to name: the interpreter, or its flag."""
    return [("the interpreter" if i == 0 else argv[i - 1], arg) for i, arg in enumerate(argv)]


def _from_file_note(dep: Deployment, restart: str) -> str:
    if dep.config_file is None:
        return "settings are copied into the command line: print this again after changing them"
    return f"settings are read from {safe(str(dep.config_file))} at each start: after editing it, {restart}"


def supervisord(dep: Deployment, name: str = "reorg-tui") -> str:
    """The [program] section; ``Uncarriable`` for a value supervisord's file cannot carry."""
    log_dir = dep.settings.state_dir
    command = supervisord_command(labelled(command_line(dep)))
    log_file = supervisord_logfile("the state folder (--state-dir)", f"{log_dir}/{name}.log")
    # supervisord refuses a config whose log folder does not exist yet: make it now.
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"""; printed by `reorg-tui config supervisord`; the log folder {safe(str(log_dir))} was created
; {_from_file_note(dep, f"`supervisorctl restart {name}`")}
[program:{name}]
command={command}
; SIGTERM drains: in-flight moves finish or are abandoned cleanly, then exit 0
stopsignal=TERM
stopwaitsecs={int(dep.settings.shutdown_timeout) + 10}
autostart=true
autorestart=true
startsecs=2
startretries=10
; a second instance on the same source would refuse (exit 3): never run more than one
; a folder replaced under it (exit 5) is taken afresh by the restart
; `supervisorctl signal HUP {name}` reloads the settings (reorg-tui reload does too): what can
; change live applies at once, the rest is kept and logged (restart to apply it)
numprocs=1
environment=PYTHONUNBUFFERED="1"
redirect_stderr=true
stdout_logfile={log_file}
stdout_logfile_maxbytes=50MB
stdout_logfile_backups=5
"""


def _is(paths: list[str]) -> str:
    return "is" if len(paths) == 1 else "are"


def _under(path: Path, roots: tuple[str, ...]) -> bool:
    text = str(path)
    return any(text == root or text.startswith(root + "/") for root in roots)


def systemd(dep: Deployment, user: str | None = None, name: str = "reorg-tui") -> tuple[str, list[str]]:
    """The unit, and warnings for stderr (what the hardening had to leave out, and why);
    ``Uncarriable`` for a folder whose name the unit cannot carry."""
    s = dep.settings
    folders = [s.source, s.dest, s.quarantine, s.state_dir]
    flags = ("--source", "--dest", "--quarantine", "--state-dir")
    writable = [(flag, str(p), False) for flag, p in zip(flags, folders, strict=True)]
    seen = [*folders, *([dep.config_file] if dep.config_file else []), Path(sys.executable)]
    if dep.pointer_dir is not None:
        # The daemon records its --state-dir there (engine/locate.py): it must be writable;
        # "-": no error if it is missing, only a warning in the daemon's log.
        writable.append(("the default state folder", str(dep.pointer_dir), True))
        seen.append(dep.pointer_dir)
    read_write = systemd_paths(writable)  # before anything is made: a refusal leaves nothing
    exec_start = systemd_exec(command_line(dep))
    if dep.pointer_dir is not None and user is None:
        # Made now for the user printing it (as supervisord's log folder is).
        with contextlib.suppress(OSError):
            dep.pointer_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    seen.append(Path(os.path.realpath(sys.executable)))
    warnings: list[str] = []
    in_tmp = sorted({safe(str(p)) for p in seen if _under(p, TMP_ROOTS)})
    if in_tmp:
        private_tmp = f"# no PrivateTmp: a private /tmp would hide {', '.join(in_tmp)}"
        warnings.append(
            f"the unit runs without PrivateTmp=yes: {', '.join(in_tmp)} {_is(in_tmp)} under /tmp or "
            "/var/tmp, which a private /tmp would hide; move them elsewhere to have that hardening"
        )
    else:
        private_tmp = "PrivateTmp=yes"
    at_home = sorted({safe(str(p)) for p in seen if _under(p, HOME_ROOTS)})
    if at_home:
        protect_home = (
            f"# home folders stay visible, read-only ({', '.join(at_home)} {_is(at_home)} there); "
            "ReadWritePaths makes the unit's own folders writable\nProtectHome=read-only"
        )
    else:
        protect_home = "ProtectHome=yes"
    user_line = (
        f"User={user}\n" if user else "# User=: add one (or print with --user NAME); it runs as root\n"
    )
    unit = f"""# printed by `reorg-tui config systemd`
# {_from_file_note(dep, f"`systemctl restart {name}`")}
[Unit]
Description={systemd_text(f"reorg-tui: move dated files from {s.source} to {s.dest}")}
After=local-fs.target network-online.target
Wants=network-online.target

[Service]
# the daemon says READY=1 once it holds the source, and feeds the watchdog while its engine answers
Type=notify
NotifyAccess=main
WatchdogSec={WATCHDOG_SECONDS}
{user_line}ExecStart={exec_start}
# `systemctl reload`: the settings read again; what can change live applies, the rest is logged
ExecReload=/bin/kill -HUP $MAINPID
Environment=PYTHONUNBUFFERED=1
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec={int(s.shutdown_timeout) + 10}
# hardening: the daemon reads and writes only its own folders
NoNewPrivileges=yes
{private_tmp}
PrivateDevices=yes
ProtectSystem=strict
{protect_home}
ReadWritePaths={read_write}
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
LockPersonality=yes
SystemCallArchitectures=native
UMask=0027

[Install]
WantedBy=multi-user.target
"""
    return unit, warnings
