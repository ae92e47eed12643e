"""Prometheus metrics, read from the engine's snapshot at scrape time: one definition of each number."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from reorg_tui import __version__, logs
from reorg_tui.config import ConfigError, Settings
from reorg_tui.engine import ALERT_RULES, BUCKETS, Snapshot, State


class SnapshotCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        t = snap.totals
        yield _counter("reorg_files_moved", "Files moved to the destination.", t.moved)
        yield _counter("reorg_moved_bytes", "Bytes moved to the destination.", t.bytes)
        yield _counter("reorg_retries", "Failed attempts scheduled for another try.", t.retried)
        yield _counter("reorg_files_quarantined", "Files sent to the quarantine.", t.quarantined)
        yield _counter("reorg_files_vanished", "Files gone from the source before their move.", t.vanished)
        yield _counter("reorg_files_skipped", "Files left in the source by --on-conflict skip.", t.skipped)
        yield _counter("reorg_files_duplicate", "Files found already at their destination.", t.duplicates)
        yield _counter("reorg_files_renamed", "Files moved under a collision name, name (1).ext.", t.renamed)
        yield _counter(
            "reorg_move_attempts",
            "Files handled: moved, skipped, failed or quarantined (a wait for room is none).",
            t.attempts,
        )
        failures = CounterMetricFamily(
            "reorg_failures",
            "Move attempts that failed or quarantined the file, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(snap.failures_by_reason.items()):
            failures.add_metric([reason], count)
        yield failures

        queues = GaugeMetricFamily("reorg_queue_depth", "Files per pipeline stage.", labels=["queue"])
        for name in ("settling", "ready", "in_flight", "retry"):
            queues.add_metric([name], getattr(snap.queues, name))
        yield queues
        yield _gauge("reorg_retry_queue_files", "Files waiting for a retry.", snap.queues.retry)
        yield _gauge("reorg_ignored_files", "Names in the source this tool does not take.", t.ignored)
        q = snap.quarantine
        yield _gauge("reorg_quarantine_files", "Files in the quarantine.", q.count)
        yield _gauge("reorg_quarantine_bytes", "Bytes in the quarantine.", q.bytes)
        oldest = snap.taken_at - q.oldest if q.oldest is not None else 0.0
        yield _gauge("reorg_quarantine_oldest_age_seconds", "Age of the oldest quarantined file.", oldest)
        yield _gauge(
            "reorg_oldest_pending_age_seconds",
            "How long the longest-waiting file in the source has waited (settling, retried, no room).",
            snap.oldest_pending_age,
        )
        yield _gauge(
            "reorg_disk_free_bytes", "Free bytes on the destination (f_bavail).", snap.disk.free_bytes
        )
        yield _gauge("reorg_disk_total_bytes", "Size of the destination filesystem.", snap.disk.total_bytes)
        yield _gauge(
            "reorg_disk_free_inodes", "Free inodes on the destination (f_favail).", snap.disk.free_inodes
        )
        yield _gauge(
            "reorg_disk_total_inodes", "Inodes of the destination filesystem.", snap.disk.total_inodes
        )
        yield _gauge(
            "reorg_disk_free_ratio", "Free fraction of the destination.", snap.disk.free_percent / 100
        )
        yield _gauge(
            "reorg_error_ratio",
            "Failed or quarantined / files handled (waits for room excluded) over the last minute.",
            snap.error_rate,
        )
        yield _gauge(
            "reorg_files_per_second",
            "Files moved per second over the last minute.",
            snap.files_per_second[60],
        )
        yield _gauge("reorg_workers_busy", "Workers moving files now.", snap.workers_busy)
        yield _gauge("reorg_alerts_active", "Alert rules crossed now.", len(snap.alerts))
        yield _one_hot(
            "reorg_alert_active", "1 while the alert rule is crossed.", "alert", ALERT_RULES, snap.alert_names
        )
        yield _one_hot(
            "reorg_engine_state", "1 for the engine's current state.", "state", State, (snap.state,)
        )
        yield _gauge("reorg_start_time_seconds", "When the engine started (unix time).", snap.started_at)
        yield _counter("reorg_scans", "Full listings of the source.", snap.scans)
        yield _gauge(
            "reorg_last_scan_timestamp_seconds",
            "When the latest full listing of the source ended (unix time; 0 before the first).",
            snap.last_scan_at or 0.0,
        )
        yield _gauge(
            "reorg_last_scan_duration_seconds", "How long the latest listing took.", snap.last_scan_seconds
        )
        yield _counter(
            "reorg_log_lines_dropped",
            "Log lines dropped: the log could not be written, or nobody read it.",
            snap.log.dropped_lines,
        )
        yield _gauge(
            "reorg_log_stalled",
            "1 while the log cannot be written (see reorg_log_lines_dropped).",
            0.0 if snap.log.writable else 1.0,
        )
        yield InfoMetricFamily(
            "reorg_build", "The running version of reorg-tui.", value={"version": __version__}
        )
        if snap.fleet is not None:
            yield from _fleet(snap)

        counts = snap.time_histogram or (0,) * (len(BUCKETS) + 1)
        bounds = [*(f"{b:g}" for b in BUCKETS), "+Inf"]
        yield HistogramMetricFamily(
            "reorg_move_duration_seconds",
            "Time to move one file.",
            buckets=list(zip(bounds, counts, strict=True)),
            sum_value=snap.time_total,
        )


def _fleet(snap: Snapshot) -> Iterator[Metric]:
    """A fleet's instance (--coordinator): labelled with its source and coordinator (host/db, never
    the URL), so rules can sum over the fleet; Prometheus's own ``instance`` label is the target."""
    fleet = snap.fleet
    assert fleet is not None
    names, values = ["source", "coordinator"], [snap.source, fleet.coordinator]
    lister = GaugeMetricFamily("reorg_fleet_lister", "1 while this instance lists the source.", labels=names)
    lister.add_metric(values, 1.0 if fleet.lister else 0.0)
    yield lister
    up = GaugeMetricFamily("reorg_fleet_coordinator_up", "1 while the coordinator answers.", labels=names)
    up.add_metric(values, 1.0 if fleet.connected else 0.0)
    yield up
    claimed = GaugeMetricFamily(
        "reorg_fleet_claimed_files", "Files this instance holds claims on.", labels=names
    )
    claimed.add_metric(values, fleet.claimed)
    yield claimed
    late = CounterMetricFamily(
        "reorg_fleet_late_outcomes",
        "Outcomes that came after their claim lapsed (a stall past the lease): recorded by nobody.",
        labels=names,
    )
    late.add_metric(values, fleet.late)
    yield late


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _one_hot(name: str, doc: str, label: str, values: Iterable[str], on: Iterable[str]) -> GaugeMetricFamily:
    """One series for each of ``values``: 1 for those ``on``, 0 for the rest (a rule sees each)."""
    family, lit = GaugeMetricFamily(name, doc, labels=[label]), set(on)
    for value in values:
        family.add_metric([value], 1.0 if value in lit else 0.0)
    return family


def serve(snapshot: Callable[[], Snapshot], addr: str, port: int) -> Any:
    """Serve /metrics in a daemon thread; returns the server (``stop_metrics`` stops it)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server


def start_metrics(snapshot: Callable[[], Snapshot], settings: Settings) -> Any:
    """The Prometheus endpoint at --metrics-addr:--metrics-port, for a face that hosts an engine.
    A port in use is a settings error."""
    try:
        server = serve(snapshot, settings.metrics_addr, settings.metrics_port)
    except OSError as exc:
        where = f"{settings.metrics_addr}:{settings.metrics_port}"
        raise ConfigError(f"cannot serve metrics on {where}: {exc.strerror or exc}") from None
    logs.emit(
        logging.INFO,
        "metrics",
        "metrics at http://%s:%d/metrics",
        settings.metrics_addr,
        settings.metrics_port,
    )
    return server


def stop_metrics(server: Any) -> None:
    """Stop serving, and let the port go (``shutdown`` alone keeps the socket bound)."""
    server.shutdown()
    server.server_close()
