"""Settings from flags, environment and a TOML file; every mistake is one line and exit code 2."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from reorg_tui.config import FIELDS, ConfigError, load
from tests.conftest import cli, write


@pytest.fixture
def dirs(tmp_path):
    for name in ("src", "dst", "src/inner"):
        (tmp_path / name).mkdir()
    return tmp_path


def test_flags_beat_environment_beat_file_beat_defaults(dirs):
    cfg = write(dirs / "c.toml", "workers = 3\nsettle = 7.5\nmax-retries = 9\n")
    env = {
        "REORG_SOURCE": str(dirs / "src"),
        "REORG_DEST": str(dirs / "dst"),
        "REORG_WORKERS": "5",
        "REORG_SETTLE": "1.5",
    }
    s = load({"workers": "8"}, env=env, config_file=cfg)
    assert s.workers == 8  # flag
    assert s.settle == 1.5  # environment
    assert s.max_retries == 9  # file
    assert s.poll_interval == 15.0  # default
    assert s.quarantine == (dirs / "dst" / "_quarantine").resolve()


def _one_line_error(result, fragment):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("reorg-tui: error:")
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr


CASES = [
    (["--source", "{d}/missing"], {}, "source {d}/missing does not exist"),
    (["--dest", "{d}/missing"], {}, "destination {d}/missing does not exist"),
    (["--dest", "{d}/src"], {}, "source and destination are the same folder"),
    (["--dest", "{d}/src/inner"], {}, "is inside the source"),
    (["--quarantine", "{d}/src/q"], {}, "quarantine {d}/src/q is inside the source"),
    (["--quarantine", "{d}"], {}, "source {d}/src is inside the quarantine {d}"),
    # A quarantine that was named is never made: a typo would scatter files into a new folder.
    (["--quarantine", "{d}/quarantine-typo"], {}, "quarantine {d}/quarantine-typo does not exist"),
    ([], {"REORG_QUARANTINE": "{d}/q-typo"}, "quarantine {d}/q-typo does not exist"),
    (["--config", "{d}/quarantine.toml"], {}, "quarantine {d}/q-in-file does not exist"),
    (["--dest", "{d}"], {}, "source {d}/src is inside the destination {d}"),
    (["--workers", "0"], {}, "--workers (flag): '0' is below the minimum 1"),
    (["--workers", "many"], {}, "'many' is not a whole number"),
    ([], {"REORG_WORKERS": "-3"}, "--workers (env REORG_WORKERS): '-3' is below the minimum 1"),
    (["--min-free-percent", "120"], {}, "above the maximum 99"),
    (["--settle", "nan"], {}, "'nan' is not a number"),
    (["--on-conflict", "overwrite"], {}, "is not one of rename, skip, dedupe, quarantine"),
    (["--pattern", "(unclosed"], {}, "is not a valid regex"),
    (["--pattern", "^(?P<year>\\d{4})_"], {}, "lacks the named group(s) month, day"),
    (["--layout", "{year}/{weekday}"], {}, "may only use {year}, {month} and {day}, not weekday"),
    (["--layout", "../{year}"], {}, "must stay inside the destination"),
    (["--log-format", "xml"], {}, "is not one of text, json"),
    (["--config", "{d}/nope.toml"], {}, "config file {d}/nope.toml does not exist"),
    (["--config", "{d}/bad.toml"], {}, "is not valid TOML"),
    (["--config", "{d}/unknown.toml"], {}, "unknown setting 'colour'"),
    (["--config", "{d}/typo.toml"], {}, "unknown setting 'worker' (did you mean 'workers'?)"),
    (
        ["--config", "{d}/table.toml"],
        {},
        "unknown setting 'reorg': settings go at the top level or under [reorg-tui]",
    ),
    (["--config", "{d}"], {}, "is a folder, not a file"),
    (["--retry-base-delay", "10", "--retry-max-delay", "1"], {}, "--retry-max-delay must not be below"),
    (["--bogus-flag"], {}, "No such option: --bogus-flag"),
    (["--shard", "4/4"], {}, "--shard (flag): '4/4' has K = 4, not below N = 4"),
    (["--shard", "x"], {}, "--shard (flag): 'x' is not K/N"),
    (["--shard", "-1/4"], {}, "--shard (flag): '-1/4' is not K/N"),
    (["--shard", "1/4/2"], {}, "--shard (flag): '1/4/2' is not K/N"),
    (["--shard", "0/2000"], {}, "'0/2000' has N = 2000: at most 1024 shards"),
    ([], {"REORG_SHARD": "0/0"}, "--shard (env REORG_SHARD): '0/0' has N = 0"),
    (["--config", "{d}/shard.toml"], {}, "shard.toml): 3 is not K/N"),
]


@pytest.mark.parametrize(("args", "env", "fragment"), CASES, ids=[c[2][:40] for c in CASES])
def test_bad_settings_give_one_line_and_exit_code_2(dirs, args, env, fragment):
    write(dirs / "bad.toml", "workers = [")
    write(dirs / "unknown.toml", "colour = 'blue'")
    write(dirs / "typo.toml", "worker = 2")
    write(dirs / "table.toml", "[reorg]\nworkers = 2")
    write(dirs / "quarantine.toml", f"quarantine = '{dirs / 'q-in-file'}'")
    write(dirs / "shard.toml", "shard = 3")
    env = {name: value.replace("{d}", str(dirs)) for name, value in env.items()}
    base = {"REORG_SOURCE": str(dirs / "src"), "REORG_DEST": str(dirs / "dst"), **env}
    result = cli(*[a.replace("{d}", str(dirs)) for a in args], "--headless", env=base)
    _one_line_error(result, fragment.replace("{d}", str(dirs)))
    assert list((dirs / "dst").iterdir()) == []  # nothing created, nothing moved
    assert not any(p.name.startswith(("q-", "quarantine-")) for p in dirs.iterdir())


def test_the_default_quarantine_under_dest_is_still_made(dirs):
    write(dirs / "src/2024-02-30_bad.txt", b"no such day", 0)
    result = cli("--once", "--settle", "0", "-s", str(dirs / "src"), "-d", str(dirs / "dst"),
                 "--state-dir", str(dirs / "state"))  # fmt: skip
    assert result.returncode == 1, result.stderr  # 1: a file was quarantined
    assert [p.name for p in (dirs / "dst/_quarantine").glob("*/*")] == ["2024-02-30_bad.txt"]


def test_missing_source_is_named_with_its_environment_variable(dirs):
    _one_line_error(
        cli("--headless", "--dest", str(dirs / "dst")), "--source is required (or set REORG_SOURCE)"
    )


def test_unwritable_destination_is_refused(dirs, immutable):
    immutable(dirs / "dst")  # chattr +i: not writable even for root
    result = cli("--headless", "-s", str(dirs / "src"), "-d", str(dirs / "dst"))
    _one_line_error(result, f"destination {dirs / 'dst'} is not writable")


def test_help_explains_every_option_with_default_and_env(dirs):
    result = cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for flag, env in [
        ("--workers", "REORG_WORKERS"),
        ("--max-retries", "REORG_MAX_RETRIES"),
        ("--poll-interval", "REORG_POLL_INTERVAL"),
        ("--min-free-percent", "REORG_MIN_FREE_PERCENT"),
        ("--on-conflict", "REORG_ON_CONFLICT"),
        ("--log-format", "REORG_LOG_FORMAT"),
    ]:
        assert flag in text and env in text
    assert "Exit codes:" in text
    for sub in (
        ["quarantine", "--help"],
        ["quarantine", "list", "--help"],
        ["quarantine", "release", "--help"],
        ["quarantine", "show", "--help"],
        ["quarantine", "delete", "--help"],
        ["demo", "--help"],
    ):
        out = cli(*sub)
        assert out.returncode == 0 and "Usage:" in out.stdout, sub


UNITS = {
    "SECONDS": "second",
    "PERCENT": "percent",
    "DAYS": "days",
    "RATIO": "ratio",
    "DURATION": "30m, 1h, 1d",
}


def test_every_number_s_metavar_names_the_unit_its_help_speaks_of():
    """--alert-error-rate took a ratio (0.05) and said SECONDS. A number's metavar must be the
    unit its help text describes; this reads both from --help, as an operator does."""
    text = " ".join(cli("--help").stdout.split())
    shown = dict(re.findall(r"(--[a-z-]+) ([A-Z]+)\b", text))
    assert shown["--alert-error-rate"] == "RATIO"
    for field in FIELDS.values():
        if field.kind is not float:
            continue
        metavar = shown[field.flag]
        assert metavar in UNITS, (field.flag, metavar)
        assert UNITS[metavar] in field.help.lower(), (field.flag, metavar, field.help)


def test_status_help_shows_only_the_options_status_uses():
    result = cli("status", "--help")
    assert result.returncode == 0, result.stderr
    options = sorted(set(re.findall(r"^\s+(?:-\w, )?(--[a-z-]+)", result.stdout, re.MULTILINE)))
    expected = ["--config", "--coordinator", "--help", "--json", "--shard", "--source", "--start-timeout"]
    expected.append("--state-dir")
    assert options == expected, result.stdout


def test_dashboard_without_a_terminal_says_so(dirs):
    result = cli("-s", str(dirs / "src"), "-d", str(dirs / "dst"))
    _one_line_error(result, "the dashboard needs a terminal; use --headless")


def test_dry_run_prints_the_plan_and_touches_nothing(dirs):
    write(dirs / "src/2024-05-01_a.txt", b"a")
    write(dirs / "src/2024-02-30_b.txt", b"b")
    write(dirs / "src/plain.txt", b"c")
    (dirs / "src/inner").rmdir()
    before = sorted(p.name for p in (dirs / "src").iterdir())
    result = cli("--dry-run", "-s", str(dirs / "src"), "-d", str(dirs / "dst"))
    assert result.returncode == 0, result.stderr
    assert f"{dirs}/src/2024-05-01_a.txt -> {dirs}/dst/2024/05/01/2024-05-01_a.txt" in result.stdout
    assert "2024-02-30_b.txt -> quarantine (2024-02-30 is not a real date)" in result.stdout
    assert "2 file(s) planned, 1 ignored; nothing was touched" in result.stdout
    assert sorted(p.name for p in (dirs / "src").iterdir()) == before
    assert list((dirs / "dst").iterdir()) == []


def test_load_refuses_source_inside_destination(tmp_path):
    (tmp_path / "dst/src").mkdir(parents=True)
    with pytest.raises(ConfigError, match="is inside the destination"):
        load({"source": str(tmp_path / "dst/src"), "dest": str(tmp_path / "dst")}, env={})
    assert not Path(os.path.join(tmp_path, "dst", "_quarantine")).exists()


def test_a_shard_keeps_its_state_below_the_folder_given_and_a_printed_unit_finds_it_again(dirs):
    """--shard K/N puts the state in STATE_DIR/shard-K-of-N (or below the default); the command
    line a deployment file prints gives the folder given, so the daemon it starts uses the same."""
    from reorg_tui.deploy import Deployment, command_line
    from reorg_tui.engine.locate import default_state_dir

    flags = {"source": str(dirs / "src"), "dest": str(dirs / "dst"), "shard": "2/4"}
    by_default = load(flags, env={})
    assert by_default.state_dir == default_state_dir(by_default.source) / "shard-2-of-4"
    given = load({**flags, "state_dir": str(dirs / "st")}, env={})
    assert given.state_dir == dirs / "st" / "shard-2-of-4"
    assert str(given.shard) == "2/4"
    for settings in (by_default, given):
        argv = command_line(Deployment(settings))
        assert argv[argv.index("--shard") + 1] == "2/4"
        printed = dict(zip(argv[4::2], argv[5::2], strict=False))
        again = load({k[2:].replace("-", "_"): v for k, v in printed.items()}, env={})
        assert again.state_dir == settings.state_dir
