"""Monitoring as code: the printed Prometheus rules and Grafana dashboard name only metrics a real
daemon serves (scraped over HTTP), the rules pass Prometheus's own checker and fire in its own
rule engine (``promtool``, where Debian's prometheus package is installed), and their thresholds
are the settings'."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import cli, wait_for

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: prometheus)")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served() -> set[str]:
    """The metric names a real daemon serves, from its endpoint over HTTP."""
    from tests.conftest import Daemon

    port = _port()
    d = Daemon("--metrics-port", str(port))
    try:
        text = ""

        def scraped() -> bool:
            nonlocal text
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except OSError:
                return False
            return "reorg_files_moved_total" in text

        wait_for(scraped, what="the metrics endpoint")
    finally:
        d.stop()
        d.cleanup()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def _names(expr: str) -> set[str]:
    return set(re.findall(r"\breorg_[a-z_]+\b", expr))


def _rules(*flags: str) -> dict:
    r = cli("config", "prometheus-rules", *flags)
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


def test_every_metric_the_rules_and_the_dashboard_name_is_served(served):
    rules = [rule for group in _rules()["groups"] for rule in group["rules"]]
    assert {r["alert"] for r in rules} >= {
        "ReorgDown", "ReorgStale", "ReorgErrorRatio", "ReorgQuarantineCount", "ReorgQuarantineGrowing",
        "ReorgPendingAge", "ReorgDiskHeadroom",
    }  # fmt: skip
    dashboard = json.loads(cli("config", "grafana").stdout)
    exprs = [r["expr"] for r in rules] + [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    named = set().union(*map(_names, exprs))
    assert named and named <= served, sorted(named - served)
    titles = [p["title"] for p in dashboard["panels"]]
    for pane in ("Throughput", "Queues", "Error rate", "Disk headroom", "Quarantine", "Oldest waiting file"):
        assert pane in titles


def test_thresholds_come_from_the_settings_and_an_off_rule_is_left_out():
    by_name = {
        r["alert"]: r
        for g in _rules(
            "--alert-error-rate", "0.2", "--alert-quarantine-count", "0", "--alert-pending-age", "600"
        )["groups"]
        for r in g["rules"]
    }
    assert (
        "reorg_error_ratio" in by_name["ReorgErrorRatio"]["expr"]
        and ">= 0.2" in by_name["ReorgErrorRatio"]["expr"]
    )
    assert "ReorgQuarantineCount" not in by_name  # 0: off, as the daemon's own alert
    assert ">= 600" in by_name["ReorgPendingAge"]["expr"]
    assert 'job="reorg-tui"' in by_name["ReorgDown"]["expr"]
    r = cli("config", "prometheus-rules", "--job", 'x"}) or vector(1) #')
    assert r.returncode == 2 and r.stderr.count("\n") == 1


INSTANCE = {"job": "files", "instance": "a:9464"}
DOWN = "reorg-tui on a:9464 does not answer its metrics endpoint"
RATE = "over 5% of the files handled in the last minute failed or were quarantined"


def _fired(severity: str, summary: str) -> dict:
    return {"exp_labels": {"severity": severity, **INSTANCE}, "exp_annotations": {"summary": summary}}


def _case(at: str, name: str, *alerts: dict) -> dict:
    return {"eval_time": at, "alertname": name, "exp_alerts": list(alerts)}


@needs_promtool
def test_the_rules_pass_promtool_and_fire_in_prometheus_rule_engine(tmp_path: Path):
    rules = tmp_path / "rules.yml"
    rules.write_text(cli("config", "prometheus-rules", "--job", "files").stdout)
    checked = subprocess.run([PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    case = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'up{job="files",instance="a:9464"}', "values": "0x10"},
                    {"series": 'reorg_error_ratio{job="files",instance="a:9464"}', "values": "0.5x10"},
                    {"series": 'reorg_disk_free_ratio{job="files",instance="a:9464"}', "values": "0.9x10"},
                ],
                "alert_rule_test": [
                    _case("5m", "ReorgDown", _fired("critical", DOWN)),
                    _case("10m", "ReorgErrorRatio", _fired("warning", RATE)),
                    _case("10m", "ReorgDiskHeadroom"),
                ],
            }
        ],
    }  # fmt: skip
    test = tmp_path / "test.yml"
    test.write_text(json.dumps(case))
    fired = subprocess.run([PROMTOOL, "test", "rules", str(test)], capture_output=True, text=True)
    assert fired.returncode == 0, fired.stdout + fired.stderr
