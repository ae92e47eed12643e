"""The printed deployment files, read back by the real parsers, for folders whose names were chosen
by someone else: a line break (with a [program:...] section behind it), `%`, ` ;`, ` #`, a
backslash, quotes, `$`, a systemd specifier (`%h`) and bytes that are not UTF-8.

The readers are the programs themselves: supervisord's own config loader (``ServerOptions``, then
``Subprocess.get_execv_args``, the argv it would exec), and systemd's (``systemd-analyze verify``,
and ``systemd --test``, which loads the unit as the service manager would and dumps what it
parsed). A small reading of systemd's documented ExecStart= rules runs as well, as an extra.
Every argv must be exactly the intended one: the one ``deploy.command_line`` builds for the same
settings. A value the format cannot carry is refused: one line, exit 2, nothing printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from reorg_tui.config import load
from reorg_tui.deploy import Deployment, command_line
from reorg_tui.names import safe
from tests.conftest import OLD, cli, refused, write

# Carried by both formats (in every place a folder's name appears); the trailing backslash is
# where Description= ends, and a backslash ending a systemd line would continue it.
CARRIED = "100% ;semi #hash back\\slash 'single' \"double\" $HOME ${HOME} %h tab\there \\"
# A line break with a section behind it: what an attacker would put in a folder's name.
INJECTION = "inbox\n[program:evil]\ncommand=touch pwned\n; "  # no slash: one folder's name
NOT_UTF8 = os.fsdecode(b"bytes-\xff\xfe-\xc3")

SYSTEMD = shutil.which("systemd-analyze")
MANAGER = next((p for p in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd") if os.path.exists(p)), None)


def _folders(root: Path, name: str) -> tuple[Path, Path, Path]:
    src, dst, state = root / f"src-{name}", root / f"dst-{name}", root / "state"
    for folder in (src, dst):
        os.mkdir(os.fsencode(folder))
    return src, dst, state


def _toml(src: Path, dst: Path, state: Path) -> str:
    values = {"source": src, "dest": dst, "state-dir": state}
    return "".join(f"{key} = {json.dumps(str(value))}\n" for key, value in values.items())


def _intended(flags: dict[str, str], config: Path | None = None) -> list[str]:
    settings = load(flags if config is None else {}, env={}, config_file=config)
    return command_line(Deployment(settings, config))


# ---- supervisord ---------------------------------------------------------------------------


def _supervisord_reads(section: str, root: Path) -> tuple[list[str], list, list[list[str]]]:
    """What supervisord's own loader makes of the printed section: the sections of the file, the
    process configs, and the argv it would exec for each."""
    from supervisor.options import ServerOptions, UnhosedConfigParser
    from supervisor.process import Subprocess

    conf = root / "supervisord.conf"
    conf.write_text(
        f"[supervisord]\nlogfile={root}/supervisord.log\npidfile={root}/supervisord.pid\n\n{section}",
        encoding="utf-8",
    )
    parser = UnhosedConfigParser()
    parser.read(str(conf))
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    processes = [p for group in options.process_group_configs for p in group.process_configs]
    return parser.sections(), processes, [Subprocess(p).get_execv_args()[1] for p in processes]


def test_supervisord_reads_exactly_the_intended_argv_from_hostile_folder_names(tmp_path):
    """Source and destination named with `%`, ` ;`, ` #`, a backslash, both quotes, `$` and
    `%h`; the state folder (where the log file goes) with `%` in it: one [program] section,
    the argv exactly the intended one, the log file exactly where it should be; and the command
    that supervisord would run moves a file between those folders."""
    src, dst, _ = _folders(tmp_path, CARRIED)
    state = tmp_path / "state 100%"
    flags = {"source": str(src), "dest": str(dst), "state_dir": str(state)}
    printed = cli("config", "supervisord", "-s", str(src), "-d", str(dst), "--state-dir", str(state))
    assert printed.returncode == 0, printed.stderr

    sections, [process], [argv] = _supervisord_reads(printed.stdout, tmp_path)
    assert sections == ["supervisord", "program:reorg-tui"]
    assert argv == _intended(flags)
    assert argv[argv.index("--source") + 1] == str(src)
    assert argv[argv.index("--dest") + 1] == str(dst)
    assert process.stdout_logfile == f"{state}/reorg-tui.log"

    write(src / "2024-03-04_a.txt", b"moved", OLD)
    ran = subprocess.run([*argv, "--once", "--settle", "0"], capture_output=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert (dst / "2024/03/04/2024-03-04_a.txt").read_bytes() == b"moved"


@pytest.mark.parametrize(
    ("where", "name", "fragment"),
    [
        ("source", INJECTION, "holds a line break"),
        ("source", NOT_UTF8, "holds bytes that are not UTF-8"),
        ("state", "log ;here", "holds whitespace before ';'"),
        ("state", "log #here", "holds whitespace before '#'"),
        ("config", INJECTION, "holds a line break"),
        ("config", NOT_UTF8, "holds bytes that are not UTF-8"),
    ],
    ids=["line break", "not UTF-8", "state ' ;'", "state ' #'", "config line break", "config not UTF-8"],
)
def test_supervisord_refuses_what_its_file_cannot_carry(tmp_path, where, name, fragment):
    """A line break would end the command and start a section of the folder owner's choosing;
    supervisord reads its file as UTF-8; in the log file's path (not split like the command)
    whitespace before `;` or `#` starts a comment. Each: one line, exit 2, nothing printed and
    no log folder made."""
    src, dst, state = _folders(tmp_path, name if where == "source" else "plain")
    if where == "state":
        state = tmp_path / name
    args = ["-s", str(src), "-d", str(dst), "--state-dir", str(state)]
    if where == "config":
        config = Path(os.fsdecode(os.fsencode(tmp_path / name) + b".toml"))
        with open(os.fsencode(config), "w") as handle:
            handle.write(_toml(src, dst, state))
        args = ["--config", str(config)]
    result = cli("config", "supervisord", *args)
    refused(result, fragment, "supervisord's config file cannot carry it")
    assert not state.exists()


# ---- systemd -------------------------------------------------------------------------------

_C_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "s": 32}


def _words(text: str, c_escapes: bool) -> list[bytes]:
    """Words as systemd's extract_first_word(EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE) reads them
    (systemd.syntax(7): quoting, and C escapes in and out of quotes) and as its dump writes
    them (shell_maybe_quote: the same escapes, in double quotes). Bytes: an escape may make
    one that is not UTF-8."""
    data, words, i = text.encode("utf-8"), [], 0
    while i < len(data):
        if data[i : i + 1] == b" ":
            i += 1
            continue
        word, quote = bytearray(), None
        while i < len(data) and (quote or data[i : i + 1] != b" "):
            char = data[i : i + 1]
            if char in (b'"', b"'") and quote in (None, char):
                quote = None if quote else char
                i += 1
            elif char == b"\\":
                nxt = data[i + 1 : i + 2].decode("latin-1")
                if c_escapes and nxt == "x":
                    word.append(int(data[i + 2 : i + 4], 16))
                    i += 4
                elif c_escapes and nxt.isdigit():
                    word.append(int(data[i + 1 : i + 4], 8))
                    i += 4
                elif c_escapes and nxt in _C_ESCAPES:
                    word.append(_C_ESCAPES[nxt])
                    i += 2
                else:
                    word += data[i + 1 : i + 2]
                    i += 2
            else:
                word += char
                i += 1
        words.append(bytes(word))
    return words


def _literal(word: bytes, specifiers: bool) -> str:
    """A word once systemd has expanded it: ``%%`` is ``%`` (any other specifier would be
    replaced: none may be left), then at exec ``$$`` is ``$`` (a ``$NAME`` would be substituted)."""
    out, i = bytearray(), 0
    while i < len(word):
        pair = word[i : i + 2]
        if specifiers and word[i : i + 1] == b"%":
            assert pair == b"%%", f"a specifier is left in {word!r}"
            out += b"%"
            i += 2
            continue
        if not specifiers and word[i : i + 1] == b"$":
            assert pair == b"$$", f"a variable is left in {word!r}"
            out += b"$"
            i += 2
            continue
        out += word[i : i + 1]
        i += 1
    return os.fsdecode(bytes(out))


def _exec_start_as_documented(unit: str) -> list[str]:
    [line] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    words = _words(line[len("ExecStart=") :], c_escapes=True)
    return [_literal(os.fsencode(_literal(w, specifiers=True)), specifiers=False) for w in words]


def _keys(unit: str) -> list[str]:
    return [line.split("=", 1)[0] for line in unit.splitlines() if line and line[0] not in "#;"]


def _manager_dump(unit: str, name: str = "reorg-tui-check.service") -> dict[str, str]:
    """``systemd --test`` loading the unit: what the manager parsed, by key. It runs as nobody
    (setpriv): as root it would try to be the real manager and stops at once here; the unit
    folder is made readable for that user (pytest's tmp_path is not)."""
    folder = Path(tempfile.mkdtemp(prefix="reorg-unit-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        (folder / name).write_text(unit, encoding="utf-8")
        (folder / name).chmod(0o644)
        dumped = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", MANAGER, "--test", "--system"]
            + [f"--unit={name}"],
            env={"SYSTEMD_UNIT_PATH": f"{folder}:", "HOME": "/tmp", "PATH": os.environ["PATH"]},
            capture_output=True,
            timeout=60,
        )
    finally:
        shutil.rmtree(folder)
    text = dumped.stdout.decode("utf-8", "surrogateescape")
    start = text.index(f"-> Unit {name}:")
    end = text.find("-> Unit ", start + 1)
    found: dict[str, str] = {}
    lines = text[start : end if end > 0 else None].splitlines()
    for i, line in enumerate(lines):
        key, _, value = line.strip().partition(": ")
        if key == "-> ExecStart:":
            key, value = "ExecStart", lines[i + 1].strip().removeprefix("Command Line: ")
        found.setdefault(key, value)
    return found


def _systemd_checks(unit: str, tmp_path: Path) -> None:
    """systemd-analyze verify finds nothing to say about the unit."""
    path = tmp_path / "reorg-tui.service"
    path.write_text(unit, encoding="utf-8")
    checked = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60
    )
    complaints = [line for line in checked.stderr.splitlines() if str(path) in line]
    assert checked.returncode == 0 and not complaints, checked.stderr


def _print_unit(*args: str) -> str:
    printed = cli("config", "systemd", *args)
    assert printed.returncode == 0, printed.stderr
    return printed.stdout


@pytest.mark.parametrize(
    "config_name", [CARRIED, INJECTION, NOT_UTF8], ids=["carried", "line break", "not UTF-8"]
)
def test_systemd_reads_exactly_the_intended_argv_and_folders_from_hostile_names(tmp_path, config_name):
    """Folders named with `%`, ` ;`, ` #`, a backslash, both quotes, `$` and `%h`, and a config
    file whose name holds those, or a line break with a section behind it, or bytes that are
    not UTF-8 (ExecStart= carries them all, as C escapes): the unit has the same keys as a
    plain one (nothing injected); systemd's parsed ExecStart, read back, is exactly the
    intended argv, and its ReadWritePaths and Description are exactly the folders."""
    src, dst, _ = _folders(tmp_path, CARRIED)
    state = tmp_path / "state %h 100%"
    config = Path(os.fsdecode(os.fsencode(tmp_path / config_name) + b".toml"))
    with open(os.fsencode(config), "w") as handle:
        handle.write(_toml(src, dst, state))
    unit = _print_unit("--config", str(config))
    plain = tmp_path / "plain"
    for folder in ("s", "d"):
        (plain / folder).mkdir(parents=True)
    reference = _print_unit("-s", str(plain / "s"), "-d", str(plain / "d"), "--state-dir", str(plain / "st"))
    assert _keys(unit) == _keys(reference)

    intended = _intended({}, config)
    assert intended[intended.index("--config") + 1] == str(config)
    assert _exec_start_as_documented(unit) == intended  # the extra: the documented rules
    if SYSTEMD is None or MANAGER is None or shutil.which("setpriv") is None:
        pytest.skip("systemd is not installed here: only the documented rules read the unit")
    _systemd_checks(unit, tmp_path)
    dump = _manager_dump(unit)
    parsed = [_literal(w, specifiers=False) for w in _words(dump["ExecStart"], c_escapes=True)]
    assert parsed == intended
    quarantine = dst / "_quarantine"
    assert dump["ReadWritePaths"].startswith(f"{src} {dst} {quarantine} {state} -")
    assert dump["Description"] == safe(f"reorg-tui: move dated files from {src} to {dst}")


@pytest.mark.parametrize(("name", "fragment"), [(INJECTION, "holds a line break"), (NOT_UTF8, "not UTF-8")])
def test_systemd_refuses_a_folder_name_readwritepaths_cannot_carry(tmp_path, name, fragment):
    """ReadWritePaths= has no C escapes and wants UTF-8 (systemd says 'String is not UTF-8
    clean, ignoring assignment'): a folder named so is refused, one line, exit 2, nothing made."""
    src, dst, state = _folders(tmp_path, name)
    result = cli("config", "systemd", "-s", str(src), "-d", str(dst), "--state-dir", str(state))
    refused(result, "--source ", fragment, "a systemd unit's ReadWritePaths= cannot carry it")
    assert not state.exists()


def test_a_warning_naming_a_hostile_folder_is_one_line(tmp_path):
    """The PrivateTmp warning on stderr names the folders: escaped, so it stays one line."""
    src, dst, state = _folders(tmp_path, CARRIED)
    printed = cli("config", "systemd", "-s", str(src), "-d", str(dst), "--state-dir", str(state))
    assert printed.returncode == 0, printed.stderr
    [warning] = printed.stderr.strip().splitlines()
    assert safe(str(src)) in warning
