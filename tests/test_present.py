"""The words of each event, as the text log, the JSON log and the dashboard's Activity pane show them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterator

import pytest
from textual.app import App, ComposeResult

from reorg_tui import logs
from reorg_tui.engine import events as ev
from reorg_tui.names import safe
from reorg_tui.present import WORDS, brief, describe, event_fields
from reorg_tui.tui.text import clock
from reorg_tui.tui.widgets.activity import ActivityLog

SOURCE = "/srv/inbox/2024-01-01_a.txt"
ROOT = "/srv/dest"
DEST = f"{ROOT}/2024/01/01/2024-01-01_a.txt"
RENAMED = f"{ROOT}/2024/01/01/2024-01-01_a (1).txt"  # a collision's new name
AT = 1_700_000_000.25  # 2023-11-14T22:13:20.250Z

# Each event kind (and each way one reads differently): its log level, describe(), brief(),
# and the JSON log's keys after time, level, event and message.
WORDING: list[tuple[ev.Event, str, str, str | None, list[str]]] = [
    (
        ev.Moved(SOURCE, DEST, 2048, 0.0123, "copied", at=AT),
        "INFO",
        f"moved {SOURCE} -> {DEST} (2.0 KiB, 12.3 ms)",
        "moved       2024-01-01_a.txt → 2024/01/01/ 12.3 ms",
        ["file", "destination", "bytes", "duration", "how"],
    ),
    (
        ev.Moved(SOURCE, DEST, 12, 0.0000042, "twin", at=AT),
        "INFO",
        f"moved {SOURCE} -> {DEST} (12 B, 0.0 ms, twin)",
        "moved       2024-01-01_a.txt → 2024/01/01/ (twin) 4 µs",
        ["file", "destination", "bytes", "duration", "how"],
    ),
    (
        ev.Moved(SOURCE, RENAMED, 12, 0.0004, "moved", True, at=AT),
        "INFO",
        f"moved {SOURCE} -> {RENAMED} (12 B, 0.4 ms, renamed: the name was taken)",
        "renamed     2024-01-01_a.txt → 2024/01/01/2024-01-01_a (1).txt 400 µs",  # the new name, under DEST
        ["file", "destination", "bytes", "duration", "how", "renamed"],
    ),
    (
        ev.Skipped(SOURCE, DEST, at=AT),
        "INFO",
        f"skipped {SOURCE}: {DEST} exists",
        "skipped     2024-01-01_a.txt: 2024/01/01/2024-01-01_a.txt exists",
        ["file", "destination"],
    ),
    (
        ev.Retried(SOURCE, 2, "move: EPERM Operation not permitted", 0.4, at=AT),
        "WARNING",
        f"retry 2 for {SOURCE}, again in 0.4s: move: EPERM Operation not permitted",
        "retry 2     2024-01-01_a.txt in 0.4s: move: EPERM Operation not permitted",
        ["file", "attempt", "error", "delay"],
    ),
    (
        ev.Waiting(SOURCE, "move: ENOSPC No space left on device", 2.0, at=AT),
        "WARNING",
        f"waiting for room to move {SOURCE}, again in 2.0s: move: ENOSPC No space left on device",
        "waiting     2024-01-01_a.txt, again in 2.0s: move: ENOSPC No space left on device",
        ["file", "error", "delay"],
    ),
    (
        ev.Quarantined(SOURCE, "2024-02-31 is not a real date", 1, "20240101T000000-deadbeef", at=AT),
        "WARNING",
        f"quarantined {SOURCE} after 1 attempt(s): 2024-02-31 is not a real date "
        "(id 20240101T000000-deadbeef)",
        "quarantined 2024-01-01_a.txt: 2024-02-31 is not a real date",
        ["file", "attempt", "error", "id"],
    ),
    (
        ev.Failed(SOURCE, "quarantine: EPERM Operation not permitted", at=AT),
        "ERROR",
        f"{SOURCE} stays in the source: quarantine: EPERM Operation not permitted",
        "FAILED      2024-01-01_a.txt: quarantine: EPERM Operation not permitted",
        ["file", "error"],
    ),
    (
        ev.Vanished(SOURCE, at=AT),
        "INFO",
        f"{SOURCE} vanished before it could be moved",
        "vanished    2024-01-01_a.txt",
        ["file"],
    ),
    (ev.Paused("disk", at=AT), "WARNING", "intake paused (disk)", "paused      intake (disk)", ["reason"]),
    (
        ev.Paused("operator", at=AT),
        "INFO",
        "intake paused (operator)",
        "paused      intake (operator)",
        ["reason"],
    ),
    (ev.Resumed("disk", at=AT), "INFO", "intake resumed (disk)", "resumed     intake (disk)", ["reason"]),
    (
        ev.Warning("inotify queue overflowed: rescanning", at=AT),
        "WARNING",
        "inotify queue overflowed: rescanning",
        "warning     inotify queue overflowed: rescanning",
        [],
    ),
    (
        ev.Alert("error_rate", "error rate 31.0% over 60s", True, at=AT),
        "WARNING",
        "ALERT: error rate 31.0% over 60s",
        None,  # the banner shows alerts
        ["alert", "active"],
    ),
    (
        ev.Alert("error_rate", "error rate 0.0% over 60s", False, at=AT),
        "INFO",
        "recovered: error rate 0.0% over 60s",
        None,
        ["alert", "active"],
    ),
]
EVENTS = [row[0] for row in WORDING]
IDS = [f"{type(e).__name__}-{i}" for i, e in enumerate(EVENTS)]
HOSTILE = "/srv/inbox/[b]\nsub/2024-01-01_[red]x\x1b[31m\nz\u202e\\q\udcff.txt"
RAW = ("\n", "\x1b", "\u202e", "\udcff")


@pytest.fixture
def log_of(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., list[str]]]:
    """What the headless face logs for some events, in text or JSON; the process's logging as it was
    afterwards."""
    monkeypatch.setattr(logs, "_sink", logs._sink)
    monkeypatch.setattr(logs, "_format", logs._format)
    root, watchdog = logging.getLogger(), logging.getLogger("watchdog")
    handlers, level, watchdog_level = root.handlers[:], root.level, watchdog.level

    def log_of(events: list[ev.Event], fmt: str = "text") -> list[str]:
        out = io.StringIO()
        logs.setup("INFO", fmt, stream=out)
        logs.log_events(events)
        logs.flush()
        return out.getvalue().splitlines()

    yield log_of
    root.handlers[:] = handlers
    root.setLevel(level)
    watchdog.setLevel(watchdog_level)


def activity_lines(events: list[ev.Event]) -> list[str]:
    """What the dashboard's Activity pane shows for some events."""

    class Pane(App[None]):
        def compose(self) -> ComposeResult:
            yield ActivityLog()

    async def main() -> list[str]:
        app = Pane()
        async with app.run_test() as pilot:
            pane = app.query_one(ActivityLog)
            pane.add(events, ROOT)
            await pilot.pause()
            return list(pane.lines)

    return asyncio.run(main())


def with_source(event: ev.Event, source: str) -> ev.Event:
    fields = {k: v for k, v in vars(event).items() if k != "at"}
    return type(event)(**{**fields, "source": source}, at=event.at)


def test_every_event_kind_has_its_words_and_a_row_here():
    assert set(WORDS) == set(ev.BY_KIND.values())
    assert {type(e) for e in EVENTS} == set(ev.BY_KIND.values())


@pytest.mark.parametrize(("event", "level", "words", "short", "keys"), WORDING, ids=IDS)
def test_each_kind_reads_as_it_always_has(event, level, words, short, keys):
    assert describe(event) == words
    assert brief(event, ROOT) == short


def test_a_text_log_line_is_its_stamp_and_level_then_describe(log_of):
    lines = log_of(EVENTS)
    assert len(lines) == len(EVENTS)
    for line, (event, level, *_) in zip(lines, WORDING, strict=True):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", line[:25]), line
        assert line[25:] == f"{level:<7} {describe(event)}"
    assert lines[0].startswith("2023-11-14T22:13:20.250Z"), "a move is stamped when it happened"


def test_a_json_log_record_has_the_documented_keys_and_describes_the_event(log_of):
    records = [json.loads(line) for line in log_of(EVENTS, "json")]
    for record, (event, level, words, _, keys) in zip(records, WORDING, strict=True):
        assert list(record) == ["time", "level", "event", "message", *keys]
        assert {k: record[k] for k in keys} == event_fields(event)
        assert record["level"] == level.lower()
        if isinstance(event, ev.Moved):  # its figures are keys of their own
            assert words.startswith(record["message"] + " (")
        else:
            assert record["message"] == words
    assert [r["event"] for r in records] == [
        "moved", "moved", "moved", "skipped", "retried", "waiting", "quarantined", "failed", "vanished",
        "paused", "paused", "resumed", "warning", "alert", "alert_recovered",
    ]  # fmt: skip
    moved = records[0]
    assert (moved["file"], moved["destination"], moved["bytes"], moved["duration"]) == (
        SOURCE,
        DEST,
        2048,
        0.0123,
    )


def test_the_activity_line_is_its_clock_then_brief():
    shown = [e for e in EVENTS if brief(e) is not None]
    assert activity_lines(EVENTS) == [f"{clock(e.at)} {brief(e, ROOT)}" for e in shown]
    assert [type(e) for e in EVENTS if e not in shown] == [ev.Alert, ev.Alert]


def test_names_with_control_characters_are_escaped_in_every_form(log_of):
    events = [with_source(e, HOSTILE) for e in EVENTS if hasattr(e, "source")]
    for event in events:
        assert safe(HOSTILE) in describe(event)
        assert safe(os.path.basename(HOSTILE)) in (brief(event) or "")
    text = log_of(events)
    records = [json.loads(line) for line in log_of(events, "json")]
    shown = activity_lines(events)
    assert len(text) == len(records) == len(shown) == len(events), "no name splits a line"
    assert all(r["file"] == safe(HOSTILE) for r in records)
    for line in [*text, *shown, *(r["message"] for r in records)]:
        assert not any(c in line for c in RAW), line


def test_a_wait_for_room_is_not_called_a_retry():
    wait = brief(ev.Waiting("/src/2024-01-01_a.txt", "move: ENOSPC No space left on device", 2.0))
    retry = brief(ev.Retried("/src/2024-01-01_a.txt", 2, "move: EPERM Operation not permitted", 0.4))
    assert wait is not None and wait.startswith("waiting") and "again in 2.0s" in wait
    assert retry is not None and retry.startswith("retry 2")


def test_the_activity_pane_shows_a_destination_relative_to_the_destination_root():
    move = ev.Moved(SOURCE, DEST, 1, 0.001, "moved", at=AT)
    assert "2024-01-01_a.txt → 2024/01/01/ " in (brief(move, ROOT) or "")
    assert "2024-01-01_a.txt → 2024/01/01/ " in (brief(move, ROOT + "/") or "")
    assert "2024-01-01_a.txt → /srv/dest/2024/01/01/ " in (brief(move, "/srv/other") or "")
