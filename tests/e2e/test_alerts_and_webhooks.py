"""Run outcomes reach the HR system and the alert receiver; a missing export fails the run."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.e2e.harness import ROOT, SAMPLE, run_sync
from tests.fixtures.targets import FAST

pytestmark = pytest.mark.e2e


def _conn(sandbox) -> str:
    sandbox.set_faults(requests_per_minute=FAST)
    conn = json.loads(sandbox.connection_json())
    conn["extra"]["requests_per_minute"] = FAST
    return json.dumps(conn)


def test_hris_webhook_gets_the_run_summary(sandbox, sync_home, webhook_receiver):
    result = run_sync(
        sync_home,
        SAMPLE,
        _conn(sandbox),
        extra_env={"HRIS_WEBHOOK_URL": webhook_receiver.url + "/hris"},
    )
    assert result.ok, result.output[-3000:]
    (hook,) = webhook_receiver.received
    body = hook["json"]
    assert hook["path"] == "/hris"
    assert body["event"] == "SYNC_COMPLETED" and body["status"] == "success"
    assert body["applied"]["create"] == 50 and body["rejected"] == 2
    assert "@" not in hook["raw"], "no emails in the webhook"
    audit = (sync_home / "audit" / "audit.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in audit]
    ops = [e for e in events if e["event"] == "USER_OPERATION"]
    assert len(ops) == 50 and all("@" not in line for line in audit)  # managers set on create
    assert {e["event"] for e in events} >= {"GATE_PASSED", "PLANNED", "SYNC_SUCCESS"}


def test_missing_export_fails_with_an_alert_naming_the_file(
    sandbox, sync_home, tmp_path, webhook_receiver
):
    config = yaml.safe_load((ROOT / "include" / "config" / "sync.yaml").read_text())
    config["export"].update(wait_timeout_minutes=0.1, poke_interval_seconds=1)
    config_path = tmp_path / "sync.yaml"
    config_path.write_text(yaml.safe_dump(config))
    missing = tmp_path / "drop" / "hris_export_20261127.csv"
    result = run_sync(
        sync_home,
        missing,
        _conn(sandbox),
        extra_env={
            "GENESYS_SYNC_CONFIG": str(config_path),
            # make sync fails at once on a missing local export; the sensor's wait is asked for
            "GENESYS_SYNC_WAIT_FOR_EXPORT": "1",
            "ALERT_WEBHOOK_URL": webhook_receiver.url + "/alerts",
            "HRIS_WEBHOOK_URL": webhook_receiver.url + "/hris",
        },
    )
    assert not result.ok
    alerts = [h["json"] for h in webhook_receiver.received if h["path"] == "/alerts"]
    waits = [a for a in alerts if a["task_id"] == "wait_for_export"]
    assert waits and str(missing) in waits[0]["message"]
    assert waits[0]["error_type"] == "ExportMissing"
    hris = [h["json"] for h in webhook_receiver.received if h["path"] == "/hris"]
    assert hris and hris[0]["status"] == "failed" and hris[0]["writes"] == 0
    assert sandbox.users() == []
