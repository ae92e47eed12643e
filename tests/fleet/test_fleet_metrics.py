"""A fleet's instance on Prometheus: the fleet's metrics served by a real daemon (the URL never in
them), and the printed rules for a fleet (an instance down, the lister missing, the coordinator
down) naming only metrics it serves, passing promtool and firing in its rule engine."""

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
from tests.fleet.conftest import Daemons

PROMTOOL = shutil.which("promtool")
MISSING = "no instance of the fleet lists /share/inbox: new files are not taken"


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(number: int) -> str:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{number}/metrics", timeout=5).read().decode()
    except OSError:
        return ""


def fleet_rules(url: str) -> list[dict]:
    printed = cli("config", "prometheus-rules", "--coordinator", url, "--job", "files")
    assert printed.returncode == 0, printed.stderr
    return [rule for group in yaml.safe_load(printed.stdout)["groups"] for rule in group["rules"]]


def test_the_fleets_metrics_are_served_and_its_rules_name_only_them(daemons: Daemons) -> None:
    number = port()
    daemons.start("a", "--metrics-port", str(number))
    wait_for(lambda: "reorg_fleet_lister{" in scrape(number) and "} 1.0" in scrape(number), 30, "metrics")
    text = scrape(number)
    assert daemons.url not in text
    lister = [line for line in text.splitlines() if line.startswith("reorg_fleet_lister{")]
    assert lister == [
        f'reorg_fleet_lister{{coordinator="{_where(daemons.url)}",source="{daemons.source}"}} 1.0'
    ]
    served = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"}
    rules = fleet_rules(daemons.url)
    named = {n for r in rules for n in re.findall(r"\breorg_[a-z_]+\b", r["expr"])}
    assert {"ReorgFleetInstanceDown", "ReorgFleetListerMissing", "ReorgFleetCoordinatorDown"} <= {
        r["alert"] for r in rules
    }
    assert named <= served, sorted(named - served)
    without = cli("config", "prometheus-rules").stdout
    assert "ReorgFleet" not in without  # a single host is given none of them


def _where(url: str) -> str:
    from reorg_tui.engine.ledger_pg import where

    return where(url)


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: prometheus)")
def test_the_fleets_rules_fire_in_prometheus_rule_engine(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        cli("config", "prometheus-rules", "--coordinator", "postgresql://db/x", "--job", "files").stdout
    )
    checked = subprocess.run([PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    fleet = 'job="files",source="/share/inbox",coordinator="db/x"'
    case = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # a lists until it dies at minute 5 (its series go stale: its scrapes fail);
                    # b never lists, and loses its coordinator
                    {"series": 'up{job="files",instance="a:9464"}', "values": "1x4 0x10"},
                    {"series": 'up{job="files",instance="b:9464"}', "values": "1x15"},
                    {"series": f'reorg_fleet_lister{{{fleet},instance="a:9464"}}', "values": "1x4 stale"},
                    {"series": f'reorg_fleet_lister{{{fleet},instance="b:9464"}}', "values": "0x15"},
                    {
                        "series": f'reorg_fleet_coordinator_up{{{fleet},instance="b:9464"}}',
                        "values": "1x4 0x10",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "ReorgFleetListerMissing", "exp_alerts": []},
                    {
                        "eval_time": "10m",
                        "alertname": "ReorgFleetInstanceDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "job": "files", "instance": "a:9464"},
                                "exp_annotations": {
                                    "summary": "an instance of the fleet, a:9464, does not answer"
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "10m",
                        "alertname": "ReorgFleetListerMissing",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "source": "/share/inbox",
                                    "coordinator": "db/x",
                                },
                                "exp_annotations": {"summary": MISSING},
                            }
                        ],
                    },
                    {
                        "eval_time": "10m",
                        "alertname": "ReorgFleetCoordinatorDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    **_labels(fleet),
                                    "instance": "b:9464",
                                },
                                "exp_annotations": {
                                    "summary": "b:9464 cannot reach its coordinator db/x: intake is paused"
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    test = tmp_path / "test.yml"
    test.write_text(json.dumps(case))
    fired = subprocess.run([PROMTOOL, "test", "rules", str(test)], capture_output=True, text=True)
    assert fired.returncode == 0, fired.stdout + fired.stderr


def _labels(selector: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in (part.split("=", 1) for part in selector.split(","))}
