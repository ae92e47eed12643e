"""`status` reads a file another process wrote: whatever is there, it answers 0, 1 or 2 with one
line, never a traceback (a wrong type in it once made it exit 70)."""

from __future__ import annotations

import copy
import json
import os
import random
import time

import pytest

from reorg_tui.engine.publish import STATE_FILE
from reorg_tui.status import check
from reorg_tui.tui.bridge import AttachedHost
from tests.conftest import make_settings, run_once, write

ODD_VALUES = [None, True, False, 0, -1, 1.5, 1e308, -1e308, 2**70, -(2**70), "", "12", "x" * 300,
              "\x1b[2J", [], [1, "a"], {}, {"a": 1}, [[[]]]]  # fmt: skip


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict:
    """A state a real engine published, made to look live (this process's pid, just now)."""
    settings = make_settings(tmp_path_factory.mktemp("published"))
    write(settings.source / "2024-02-30_bad.txt", b"x", time.time() - 3600)
    run_once(settings)
    data = json.loads((settings.state_dir / STATE_FILE).read_bytes())
    data["snapshot"]["state"] = "running"
    data["events"].append({"kind": "moved", "source": "a", "destination": "b", "size": 1, "seconds": 0.1,
                           "how": "moved", "at": 1.0})  # fmt: skip
    return data


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document, as a path of keys and indexes."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


def _mutated(base: dict, rng: random.Random) -> object:
    doc = copy.deepcopy(base)
    doc["published_at"] = time.time()
    doc["pid"] = os.getpid()
    for _ in range(rng.randint(1, 4)):
        places = [p for p in _paths(doc) if p]
        if not places:
            break
        where = rng.choice(places)
        parent = doc
        for key in where[:-1]:
            parent = parent[key]
        if rng.random() < 0.2 and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            parent[where[-1]] = rng.choice(ODD_VALUES)
    return doc


def _random_json(rng: random.Random, depth: int = 0) -> object:
    pick = rng.random()
    if depth > 3 or pick < 0.4:
        return rng.choice(ODD_VALUES)
    if pick < 0.7:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["snapshot", "pid", "published_at", "events", "totals", "queues", "x"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _assert_answers(state_dir, what) -> None:
    health = check(state_dir)
    assert health.code in (0, 1, 2), what
    assert health.line and "\n" not in health.line, what
    json.dumps(health.to_dict())  # what --json prints


def test_any_content_of_the_published_file_gets_0_1_or_2_and_one_line(tmp_path, published):
    rng = random.Random(14)
    target = tmp_path / STATE_FILE
    _assert_answers(tmp_path, "no file")
    target.write_text(json.dumps({**published, "pid": os.getpid(), "published_at": time.time()}))
    assert check(tmp_path).code == 1  # the base is live, with a file in quarantine: degraded
    docs = [_mutated(published, rng) for _ in range(300)] + [_random_json(rng) for _ in range(100)]
    for i, doc in enumerate(docs):
        target.write_text(json.dumps(doc))
        _assert_answers(tmp_path, (i, doc))
    for raw in (b"", b"\xff\xfe\x00garbage", os.urandom(4096), b"[" * 100_000, b'{"snapshot": NaN}',
                b'{"pid": 1e999}'):  # fmt: skip
        target.write_bytes(raw)
        _assert_answers(tmp_path, raw[:20])


def test_a_wrong_type_where_the_snapshot_had_a_count_is_reported_not_crashed_on(tmp_path, published):
    doc = {**published, "pid": os.getpid(), "published_at": time.time()}
    doc["snapshot"] = {**doc["snapshot"], "queues": {**doc["snapshot"]["queues"], "ready": "12"}}
    (tmp_path / STATE_FILE).write_text(json.dumps(doc))
    health = check(tmp_path)
    assert health.code == 2 and "snapshot.queues.ready='12'" in health.line
    doc["snapshot"]["a_field_of_a_newer_version"] = 1  # was a crash: from_dict took no unknown field
    doc["snapshot"]["queues"]["ready"] = 0
    (tmp_path / STATE_FILE).write_text(json.dumps(doc))
    assert check(tmp_path).code == 1


@pytest.mark.parametrize("kind", ["directory", "fifo", "symlink", "huge", "garbage"])
def test_the_command_line_status_over_odd_files_exits_2_with_one_line(tmp_path, published, kind):
    from tests.conftest import cli

    state = tmp_path / "state"
    state.mkdir()
    target = state / STATE_FILE
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)  # opened for reading, it would wait for a writer for ever
    elif kind == "symlink":
        (tmp_path / "elsewhere.json").write_text(json.dumps(published))
        target.symlink_to(tmp_path / "elsewhere.json")
    elif kind == "huge":
        target.write_bytes(b" " * (17 << 20))
    else:
        target.write_bytes(b"\x00\xff" * 100)
    done = cli("status", "--state-dir", str(state), timeout=20)
    assert done.returncode == 2, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1 and not done.stderr


def test_an_attached_dashboard_keeps_its_last_state_when_the_file_turns_bad(tmp_path, published):
    from reorg_tui.engine.publish import read_published

    settings = make_settings(tmp_path)
    good = {**published, "pid": os.getpid(), "published_at": time.time()}
    (settings.state_dir / STATE_FILE).write_text(json.dumps(good))
    host = AttachedHost(settings)
    host.poll()
    assert host.pid == os.getpid()
    bad = copy.deepcopy(good)
    bad["snapshot"]["totals"]["moved"] = "many"
    bad["events"] = [{"kind": "moved", "source": 5}, "not an event", {"kind": 7}]
    (settings.state_dir / STATE_FILE).write_text(json.dumps(bad))
    host.poll()  # was a TypeError in the dashboard's poll
    assert host.snapshot().totals.moved == good["snapshot"]["totals"]["moved"]
    assert not isinstance(read_published(settings.state_dir), type(host.snapshot()))


@pytest.mark.parametrize(
    "content",
    [b"[" * 5000, b'{"source": 5, "state_dir": []}', b'{"source": "SRC", "state_dir": 7}', b"\xff\x00"],
    ids=["deep", "wrong-types", "wrong-target", "garbage"],
)
def test_a_state_dir_pointer_of_any_content_leaves_status_answering_2(tmp_path, content):
    """The pointer an instance leaves in its source's default state folder is input too."""
    from reorg_tui.engine.locate import POINTER, default_state_dir
    from tests.conftest import cli

    source = tmp_path / "src"
    source.mkdir()
    default = default_state_dir(source)
    default.mkdir(parents=True)
    (default / POINTER).write_bytes(content.replace(b"SRC", str(source).encode()))
    done = cli("status", "--source", str(source), timeout=20)
    assert done.returncode == 2, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1 and not done.stderr


def test_hostile_published_roots_are_ignored_not_crashed_on(tmp_path, published):
    """The roots a daemon publishes (roots.py) are input too: an infinite device number, a path
    with a NUL, wrong shapes. Each is ignored; `status` still answers in one line (once: exit 70)."""
    doc = {**published, "pid": os.getpid(), "published_at": time.time()}
    for roots in (
        [{"label": "source", "path": "/tmp", "dev": float("inf"), "ino": 1}],
        [{"label": "source", "path": "/tmp/\u0000x", "dev": 1, "ino": 1}],
        [None, 3, "x", []],
        {"label": "source"},
    ):
        (tmp_path / STATE_FILE).write_text(json.dumps({**doc, "roots": roots}))
        _assert_answers(tmp_path, roots)
        assert check(tmp_path).code == 1, roots  # as without roots: live, one file in quarantine
