"""Monitoring as code: Prometheus alerting rules and a Grafana dashboard that match the metrics
the exporter serves (exporter.py), printed by ``reorg-tui config prometheus-rules`` and
``reorg-tui config grafana``.

The rules take their thresholds from the settings given (the same flags, variables and config
file as the daemon's), so Prometheus pages at what the daemon itself calls an alert. Every metric
named here is one the exporter serves: a test scrapes a real endpoint and checks each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_JOB = "reorg-tui"


@dataclass(frozen=True)
class Rule:
    name: str
    expr: str
    wait: str  # how long it must hold: Prometheus's "for"
    severity: str
    summary: str


def rules(values: Mapping[str, Any], job: str = DEFAULT_JOB) -> list[Rule]:
    """The alerting rules for settings ``values`` (config.resolve's): a rule whose threshold is
    0 (off) in the settings is left out, as the daemon leaves out its alert."""
    sel = f'job="{job}"'
    stale = max(300.0, 4 * float(values["poll_interval"]))
    out = [
        Rule(
            "ReorgDown",
            f"up{{{sel}}} == 0",
            "2m",
            "critical",
            "reorg-tui on {{ $labels.instance }} does not answer its metrics endpoint",
        ),
        Rule(
            "ReorgMissing",
            f"absent(up{{{sel}}})",
            "10m",
            "critical",
            f"no reorg-tui target of job {job} is scraped at all",
        ),
        Rule(
            "ReorgStale",
            f"time() - reorg_last_scan_timestamp_seconds{{{sel}}} > {stale:g}"
            f" and reorg_last_scan_timestamp_seconds{{{sel}}} > 0",
            "5m",
            "critical",
            f"reorg-tui on {{{{ $labels.instance }}}} has not listed its source for over {stale:g} s",
        ),
        Rule(
            "ReorgDiskPaused",
            f'reorg_engine_state{{{sel},state="paused-disk"}} == 1',
            "5m",
            "critical",
            "reorg-tui on {{ $labels.instance }} paused intake: the destination is short of space",
        ),
    ]
    if values.get("coordinator"):
        out += fleet_rules(sel)
    if values["alert_error_rate"]:
        rate = float(values["alert_error_rate"])
        out.append(
            Rule(
                "ReorgErrorRatio",
                f"reorg_error_ratio{{{sel}}} >= {rate:g}",
                "5m",
                "warning",
                f"over {rate:.0%} of the files handled in the last minute failed or were quarantined",
            )
        )
    if values["alert_quarantine_count"]:
        count = int(values["alert_quarantine_count"])
        out.append(
            Rule(
                "ReorgQuarantineCount",
                f"reorg_quarantine_files{{{sel}}} >= {count}",
                "5m",
                "warning",
                "{{ $value }} files wait in the quarantine on {{ $labels.instance }}",
            )
        )
    out.append(
        Rule(
            "ReorgQuarantineGrowing",
            f"increase(reorg_files_quarantined_total{{{sel}}}[1h]) > 0",
            "0m",
            "info",
            "files were quarantined in the last hour on {{ $labels.instance }}",
        )
    )
    if values["alert_quarantine_age"]:
        age = float(values["alert_quarantine_age"])
        out.append(
            Rule(
                "ReorgQuarantineAge",
                f"reorg_quarantine_oldest_age_seconds{{{sel}}} >= {age:g}",
                "5m",
                "warning",
                f"a file has waited in the quarantine for over {age:g} s",
            )
        )
    if values.get("alert_pending_age"):
        age = float(values["alert_pending_age"])
        out.append(
            Rule(
                "ReorgPendingAge",
                f"reorg_oldest_pending_age_seconds{{{sel}}} >= {age:g}",
                "2m",
                "warning",
                f"a file has waited in the source for over {age:g} s (settling, retried or "
                "waiting for room): a lost event, a wedged mount or a writer that never closes",
            )
        )
    if values["alert_disk_free_percent"]:
        free = float(values["alert_disk_free_percent"]) / 100
        out.append(
            Rule(
                "ReorgDiskHeadroom",
                f"reorg_disk_free_ratio{{{sel}}} < {free:g}",
                "5m",
                "warning",
                f"the destination has under {free:.0%} free on {{{{ $labels.instance }}}}",
            )
        )
    return out


def fleet_rules(sel: str) -> list[Rule]:
    """With --coordinator: an instance of the fleet down, the lister missing, the coordinator down."""
    return [
        Rule(
            "ReorgFleetInstanceDown",
            f"up{{{sel}}} == 0 and on(instance) max_over_time(reorg_fleet_lister{{{sel}}}[1h]) >= 0",
            "2m",
            "critical",
            "an instance of the fleet, {{ $labels.instance }}, does not answer",
        ),
        Rule(
            "ReorgFleetListerMissing",
            f"sum by (source, coordinator) (reorg_fleet_lister{{{sel}}}) == 0",
            "2m",
            "critical",
            "no instance of the fleet lists {{ $labels.source }}: new files are not taken",
        ),
        Rule(
            "ReorgFleetCoordinatorDown",
            f"reorg_fleet_coordinator_up{{{sel}}} == 0",
            "2m",
            "critical",
            "{{ $labels.instance }} cannot reach its coordinator {{ $labels.coordinator }}: intake is paused",
        ),
    ]


def prometheus_rules(values: Mapping[str, Any], job: str = DEFAULT_JOB) -> str:
    """A rule file (YAML; every string double-quoted, in JSON's escapes, which YAML reads as
    they are) for Prometheus's ``rule_files``."""
    lines = [
        "# reorg-tui alerting rules: reorg-tui config prometheus-rules",
        "groups:",
        f"  - name: {json.dumps(job)}",
        "    rules:",
    ]
    for rule in rules(values, job):
        lines += [
            f"      - alert: {rule.name}",
            f"        expr: {json.dumps(rule.expr)}",
            f"        for: {rule.wait}",
            "        labels:",
            f"          severity: {rule.severity}",
            "        annotations:",
            f"          summary: {json.dumps(rule.summary)}",
        ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Panel:
    title: str
    exprs: tuple[tuple[str, str], ...]  # (expr, legend)
    unit: str = "short"
    width: int = 12


def panels(job: str = DEFAULT_JOB) -> list[Panel]:
    """The terminal's panes, as Grafana panels."""
    sel = f'job="{job}",instance=~"$instance"'
    return [
        Panel(
            "Throughput",
            (
                (f"rate(reorg_files_moved_total{{{sel}}}[1m])", "files/s"),
                (f"rate(reorg_moved_bytes_total{{{sel}}}[1m])", "bytes/s"),
            ),
            "ops",
        ),
        Panel("Queues", ((f"reorg_queue_depth{{{sel}}}", "{{queue}}"),)),
        Panel("Error rate", ((f"reorg_error_ratio{{{sel}}}", "error ratio"),), "percentunit"),
        Panel(
            "Failures by reason",
            ((f"sum by (reason) (rate(reorg_failures_total{{{sel}}}[5m]))", "{{reason}}"),),
        ),
        Panel("Time per file (p50, p95)", (_quantile(0.5, sel), _quantile(0.95, sel)), "s"),
        Panel("Disk headroom", ((f"reorg_disk_free_ratio{{{sel}}}", "free"),), "percentunit"),
        Panel(
            "Quarantine",
            (
                (f"reorg_quarantine_files{{{sel}}}", "files"),
                (f"reorg_quarantine_oldest_age_seconds{{{sel}}}", "oldest (s)"),
            ),
        ),
        Panel("Oldest waiting file", ((f"reorg_oldest_pending_age_seconds{{{sel}}}", "age (s)"),), "s"),
        Panel("Alerts", ((f"reorg_alert_active{{{sel}}}", "{{alert}}"),), width=24),
    ]


def _quantile(q: float, sel: str) -> tuple[str, str]:
    buckets = f"sum by (le) (rate(reorg_move_duration_seconds_bucket{{{sel}}}[5m]))"
    return f"histogram_quantile({q:g}, {buckets})", f"p{q * 100:g}"


def grafana_dashboard(job: str = DEFAULT_JOB) -> str:
    """A dashboard to import (Dashboards, New, Import): it asks for a Prometheus data source."""
    source = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    made, x, y = [], 0, 0
    for number, panel in enumerate(panels(job), 1):
        if x + panel.width > 24:
            x, y = 0, y + 8
        made.append(
            {
                "id": number,
                "type": "timeseries",
                "title": panel.title,
                "datasource": source,
                "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "targets": [
                    {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": source}
                    for i, (expr, legend) in enumerate(panel.exprs)
                ],
            }
        )
        x += panel.width
    dashboard = {
        "__inputs": [
            {
                "name": "DS_PROMETHEUS",
                "label": "Prometheus",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "title": "reorg-tui",
        "uid": "reorg-tui",
        "tags": ["reorg-tui"],
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "10s",
        "templating": {
            "list": [
                {
                    "name": "instance",
                    "type": "query",
                    "datasource": source,
                    "query": f'label_values(reorg_build_info{{job="{job}"}}, instance)',
                    "includeAll": True,
                    "multi": True,
                    "refresh": 2,
                }
            ]
        },
        "panels": made,
    }
    return json.dumps(dashboard, indent=2) + "\n"
