"""Deployment files printed from the settings in force, so they always match the flags."""

from __future__ import annotations

import shlex
import sys
from dataclasses import fields

from reorg_tui.config import FIELDS, Settings


def command_line(settings: Settings) -> list[str]:
    """The headless command that reproduces these settings (defaults left out)."""
    argv = [sys.executable, "-m", "reorg_tui", "--headless"]
    for f in fields(Settings):
        value = getattr(settings, f.name)
        field = FIELDS[f.name]
        if f.name == "log_format":
            value = "json"  # log shippers read one JSON object a line
        elif value == field.default:
            continue
        if field.kind is bool:
            argv.append(field.flag if value else f"--no-{field.flag[2:]}")
        elif field.kind is tuple:
            argv += [field.flag, ",".join(value)]
        else:
            argv += [field.flag, str(value)]
    return argv


def supervisord(settings: Settings, name: str = "reorg-tui") -> str:
    log_dir = settings.state_dir
    # supervisord refuses a config whose log folder does not exist yet: make it now.
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"""; printed by `reorg-tui config supervisord`; the log folder {log_dir} was created
[program:{name}]
command={shlex.join(command_line(settings))}
; SIGTERM drains: in-flight moves finish or are abandoned cleanly, then exit 0
stopsignal=TERM
stopwaitsecs={int(settings.shutdown_timeout) + 10}
autostart=true
autorestart=true
startsecs=2
startretries=10
; a second instance on the same source would refuse (exit 3): never run more than one
numprocs=1
environment=PYTHONUNBUFFERED="1"
redirect_stderr=true
stdout_logfile={log_dir}/{name}.log
stdout_logfile_maxbytes=50MB
stdout_logfile_backups=5
"""


def systemd(settings: Settings, name: str = "reorg-tui") -> str:
    writable = " ".join(
        shlex.quote(str(p)) for p in (settings.source, settings.dest, settings.quarantine, settings.state_dir)
    )
    return f"""[Unit]
Description=reorg-tui: move dated files from {settings.source} to {settings.dest}
After=local-fs.target network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={shlex.join(command_line(settings))}
Environment=PYTHONUNBUFFERED=1
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec={int(settings.shutdown_timeout) + 10}
# hardening: the daemon reads and writes only its own folders
NoNewPrivileges=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths={writable}
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
