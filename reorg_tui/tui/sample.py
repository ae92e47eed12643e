"""A fixed, lifelike state: for snapshot tests and the README's screenshots (no clock, no I/O)."""

from __future__ import annotations

import fnmatch
import os
import threading

from reorg_tui.engine import Disk, QuarantineInfo, Queues, Record, RetryItem, Snapshot, Timing, Totals
from reorg_tui.engine import events as ev
from reorg_tui.engine.ledger import Identity, Query, Step, Transfer, TransferKind
from reorg_tui.engine.metrics import Pending

NOW = 1_789_398_000.0  # a fixed instant: 2026-09-14 13:00:00 UTC
_HISTORY = tuple(
    (40 + (i * 37) % 90, (40 + (i * 37) % 90) * 48_000, 41 + (i * 37) % 90, 1 if i % 17 == 0 else 0)
    for i in range(300)
)

# As the mover words it: the cause first, the folder after (a narrow screen cuts the end).
FOLDER_IS_A_FILE = (
    "'13' in '2026/02/13' is a file, not a folder: refused, not followed (/srv/archive/2026/02/13)"
)
RECORDS = [
    Record(
        id="20260914T101500-1a2b3c4d",
        name="2024-02-30_invoice-0412.pdf",
        original="/srv/inbox/2024-02-30_invoice-0412.pdf",
        intended=None,
        reason="2024-02-30 is not a real date",
        attempts=0,
        errors=["2026-09-14T10:15:00Z 2024-02-30 is not a real date"],
        quarantined_at=NOW - 3 * 3600,
        first_failed_at=NOW - 3 * 3600,
        size=48_213,
    ),
    Record(
        id="20260914T121033-5e6f7a8b",
        name="2026-02-13_scan [draft] a[1].tif",
        original="/srv/inbox/2026-02-13_scan [draft] a[1].tif",
        intended="/srv/archive/2026/02/13/2026-02-13_scan [draft] a[1].tif",
        reason=FOLDER_IS_A_FILE,
        attempts=0,
        errors=[f"2026-09-14T12:10:33Z {FOLDER_IS_A_FILE}"],
        quarantined_at=NOW - 1500,
        first_failed_at=NOW - 1500,
        size=2_310_554,
    ),
    Record(
        id="20260914T125511-9c0d1e2f",
        name="2026-03-01_backup.tar",
        original="/srv/inbox/2026-03-01_backup.tar",
        intended="/srv/archive/2026/03/01/2026-03-01_backup.tar",
        reason="move: EPERM Operation not permitted",
        attempts=6,
        errors=[f"2026-09-14T12:5{i}:0{i}Z move: EPERM Operation not permitted" for i in range(6)],
        quarantined_at=NOW - 300,
        first_failed_at=NOW - 420,
        size=734_003_200,
    ),
]


ALERTS = (
    "error rate 31.0% over 60s is at or above 5.0%",
    "the oldest quarantined file has waited 3 hours (alert at 1 hour)",
)


def snapshot(state: str = "running") -> Snapshot:
    retry_head: tuple[RetryItem, ...] = (
        RetryItem(
            "2026-03-02_report.xlsx",
            2,
            NOW + 6,
            "move: EBUSY Device or resource busy",
            errors=(
                "2026-09-14T14:58:50Z move: EBUSY Device or resource busy",
                "2026-09-14T14:59:52Z move: EBUSY Device or resource busy",
            ),
        ),
        RetryItem("2026-03-02_photo.jpg", 1, NOW + 1.5, "move: EIO Input/output error"),
    )
    if state == "paused-disk":  # a file that found no room: it waits for the disk, no attempt made
        retry_head += (
            RetryItem("2026-03-03_scan.tif", 0, None, "move: ENOSPC No space left on device", for_room=True),
        )
    return Snapshot(
        taken_at=NOW,
        state="running" if state == "alert" else state,  # an alert is no state of its own
        pause_reason="destination has 7.5% free, under the 10% minimum" if state == "paused-disk" else None,
        source="/srv/inbox",
        dest="/srv/archive",
        quarantine_dir="/srv/archive/_quarantine",
        watcher="inotify",
        started_at=NOW - 4 * 3600 - 754,
        workers_total=4,
        workers_busy=2,
        totals=Totals(
            moved=1_284_530,
            bytes=61_657_000_000,
            ignored=12,
            skipped=0,
            retried=37,
            quarantined=3,
            failed_attempts=44,
            vanished=2,
            duplicates=1,
        ),
        files_per_second={10: 84.2, 60: 79.9, 300: 81.3},
        bytes_per_second={10: 4_041_600.0, 60: 3_835_200.0, 300: 3_902_400.0},
        error_rate=0.012 if state != "alert" else 0.31,
        timing=Timing(mean=0.0021, p50=0.0009, p95=0.0064, max=1.92),
        queues=Queues(settling=3, ready=120, in_flight=8, retry=len(retry_head)),
        retry_head=retry_head,
        disk=Disk(
            free_bytes=75_000_000_000 if state != "paused-disk" else 7_500_000_000,
            total_bytes=100_000_000_000,
            free_percent=75.0 if state != "paused-disk" else 7.5,
            min_free_percent=10.0,
        ),
        quarantine=QuarantineInfo(
            count=len(RECORDS), bytes=sum(r.size for r in RECORDS), oldest=NOW - 3 * 3600
        ),
        scans=97,
        last_scan_seconds=0.04,
        history=_HISTORY,
        alerts=ALERTS if state == "alert" else (),
        alert_names=("error_rate", "quarantine_age") if state == "alert" else (),
        waiting=WAITING,
    )


WAITING: tuple[Pending, ...] = (
    Pending("2026-03-01_camera-dump.mov", "settling", NOW - 2 * 3600 - 1260, "still for 0s"),
    Pending(
        "2026-03-02_report.xlsx", "retrying", NOW - 1900, "attempt 2: move: EBUSY Device or resource busy"
    ),
    Pending("2026-03-02_photo.jpg", "retrying", NOW - 64, "attempt 1: move: EIO Input/output error"),
    Pending("2026-03-02_c.txt", "ready", NOW - 1),
    Pending("2026-03-02_d.txt", "ready", NOW - 1),
)


EVENTS: list[ev.Event] = [
    ev.Moved(
        "/srv/inbox/2026-03-02_a.txt",
        "/srv/archive/2026/03/02/2026-03-02_a.txt",
        1200,
        0.0008,
        "moved",
        at=NOW - 3,
    ),
    ev.Retried(
        "/srv/inbox/2026-03-02_report.xlsx", 2, "move: EBUSY Device or resource busy", 4.0, at=NOW - 2
    ),
    ev.Moved(
        "/srv/inbox/2026-03-02_b.txt",
        "/srv/archive/2026/03/02/2026-03-02_b.txt",
        800,
        0.0007,
        "moved",
        at=NOW - 1,
    ),
    ev.Quarantined(
        "/srv/inbox/2026-03-01_backup.tar", "move: EPERM Operation not permitted", 6, RECORDS[2].id, at=NOW
    ),
]


def _transfer(
    row_id: int, kind: TransferKind, step: Step, source: str, target: str, ago: float, **more: object
) -> Transfer:
    at = NOW - ago
    return Transfer(
        kind=kind,
        step=step,
        identity=Identity(64769, 1000 + row_id, 48_000 + row_id, 0, 0),
        source=source.encode(),
        target=target.encode(),
        started=at,
        finished=at,
        batch=f"1f2e3d4c.{row_id}",
        id=row_id,
        **more,  # type: ignore[arg-type]
    )


_Q = "/srv/archive/_quarantine"
TRANSFERS = [  # the ledger's rows, oldest first (the History view shows them newest first)
    _transfer(
        1,
        TransferKind.QUARANTINE,
        Step.DONE,
        "/srv/inbox/2024-02-30_invoice-0412.pdf",
        f"{_Q}/{RECORDS[0].id}/2024-02-30_invoice-0412.pdf",
        3 * 3600,
        attempts=0,
    ),
    _transfer(
        2,
        TransferKind.DELIVER,
        Step.DONE,
        "/srv/inbox/2026-03-01_minutes.odt",
        "/srv/archive/2026/03/01/2026-03-01_minutes.odt",
        2 * 3600,
    ),
    _transfer(
        3,
        TransferKind.DELIVER,
        Step.WITHDRAWN,
        "/srv/inbox/2026-03-02_photo.jpg",
        "/srv/archive/2026/03/02/2026-03-02_photo.jpg",
        1800,
        errors=["2026-09-14T12:30:00Z the source changed during its copy"],
    ),
    _transfer(
        4,
        TransferKind.RELEASE,
        Step.DONE,
        f"{_Q}/20260914T110000-77aa88bb/2026-03-02_photo.jpg",
        "/srv/inbox/2026-03-02_photo.jpg",
        1200,
    ),
    _transfer(
        5,
        TransferKind.DELIVER,
        Step.DONE,
        "/srv/inbox/2026-09-10_site-photos.zip",
        "/srv/archive/2026/09/10/2026-09-10_site-photos.zip",
        400,
        attempts=3,
        errors=[
            "2026-09-14T12:51:40Z move: EPERM Operation not permitted",
            "2026-09-14T12:52:10Z move: EPERM Operation not permitted",
        ],
    ),
    _transfer(
        6,
        TransferKind.DELIVER,
        Step.DONE,
        "/srv/inbox/2026-03-02_a.txt",
        "/srv/archive/2026/03/02/2026-03-02_a (1).txt",
        3,
    ),
]


class FrozenHost:
    """Serves one fixed state: the dashboard under test is real; only time stands still."""

    live = False

    def __init__(self, state: str = "running") -> None:
        self.state = state
        self._events = list(EVENTS)

    def run(self, stop: threading.Event) -> None:
        stop.wait()

    def snapshot(self) -> Snapshot:
        return snapshot(self.state)

    def drain_events(self) -> list[ev.Event]:
        out, self._events = self._events, []
        return out

    def pause(self) -> None:
        self.state = "paused"

    def resume(self) -> None:
        self.state = "running"

    def quarantine_list(self) -> list[Record]:
        return list(RECORDS)

    def quarantine_record(self, item_id: str) -> Record:
        return next(r for r in RECORDS if r.id == item_id)

    def release(self, item_id: str) -> str:
        raise RuntimeError("a frozen sample cannot release files")

    def delete(self, item_id: str) -> Record:
        raise RuntimeError("a frozen sample cannot delete files")

    def history(self, query: Query) -> list[Transfer]:
        """As the ledger answers: the glob on either path's file name, newest first."""

        def matches(row: Transfer) -> bool:
            names = (os.path.basename(row.source_path), os.path.basename(row.target_path))
            return query.name is None or any(fnmatch.fnmatchcase(n, query.name) for n in names)

        return [row for row in reversed(TRANSFERS) if matches(row)][: query.limit]
