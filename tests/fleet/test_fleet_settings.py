"""The fleet's settings from the command line: one line and exit 2 for what cannot run, and the
coordinator's URL (a secret) never shown whole."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.conftest import cli, wait_for
from tests.fleet.conftest import Daemons


def one_line(result, fragment: str, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert fragment in lines[0], lines[0]
    return lines[0]


def folders(tmp_path: Path) -> list[str]:
    for name in ("src", "dst"):
        (tmp_path / name).mkdir()
    return ["-s", str(tmp_path / "src"), "-d", str(tmp_path / "dst"), "--state-dir", str(tmp_path / "st")]


def test_a_coordinator_that_is_no_postgresql_url_is_one_line_without_the_secret(tmp_path: Path) -> None:
    env = {"REORG_COORDINATOR": "mysql://fleet:s3cret@db/reorg"}
    line = one_line(
        cli("--headless", *folders(tmp_path), env=env), "--coordinator must be a postgresql:// URL"
    )
    assert "s3cret" not in line


def test_once_does_not_go_with_a_coordinator(tmp_path: Path) -> None:
    args = [*folders(tmp_path), "--coordinator", "postgresql://fleet:s3cret@db/reorg"]
    line = one_line(cli("--once", *args), "--once does not go with --coordinator")
    assert "s3cret" not in line


def test_a_printed_unit_never_carries_the_coordinator(tmp_path: Path) -> None:
    args = [*folders(tmp_path), "--coordinator", "postgresql://fleet:s3cret@db/reorg"]
    result = cli("config", "systemd", *args)
    one_line(result, "--coordinator URLs are secrets")
    assert "s3cret" not in result.stdout


def test_an_instance_with_other_settings_than_the_fleets_is_refused(daemons: Daemons) -> None:
    first = daemons.start("first")
    wait_for(lambda: (daemons.snapshot("first") or {}).get("state") == "running", 30, "the first instance")
    other = cli(
        "--headless",
        *("-s", str(daemons.source), "-d", str(daemons.dest), "--state-dir", str(daemons.root / "st2")),
        *("--coordinator", daemons.url, "--layout", "{year}"),
    )
    one_line(other, "the fleet on")
    assert "runs with --layout '{year}/{month}/{day}'" in other.stderr
    assert daemons.url not in other.stderr
    # A single-host instance (no coordinator) on the fleet's source is refused as a second one.
    alone = cli(
        "--headless",
        "-s",
        str(daemons.source),
        "-d",
        str(daemons.dest),
        "--state-dir",
        str(daemons.root / "st3"),
    )
    one_line(alone, "already processing", code=3)
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0
