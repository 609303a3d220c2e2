"""A file that is not an HRIS export (``make sync EXPORT=/etc/passwd``) is blocked by the gate,
and nothing of its content reaches a message, an artifact, the audit log, Data Docs or a log."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from genesys_sync.export import ExportError, read_export
from genesys_sync.runs import Run
from genesys_sync.stages.common import GateBlocked
from genesys_sync.stages.finish import finish_stage
from genesys_sync.stages.validate import validate_stage

SECRET = "s3cr3t-T0KEN-9f8e7d"
OTHER = "hunter2-PASSWORD-42"

HOSTILE = {
    # /etc/shadow or /etc/passwd: one colon-separated "column" (the header was echoed)
    "shadow": f"root:{SECRET}:19000:0:99999:7:::\ndaemon:{OTHER}:19000:0:99999:7:::\n",
    "passwd with commas": (
        f"root:{SECRET}:0:0:root:/root:/bin/bash\n"
        f"daemon:{OTHER}:1:1:Daemon User,,,:/usr/sbin:/usr/sbin/nologin\n"
    ),
    # looks ';'-delimited: the wrong-delimiter message used to quote the header line
    "semicolons": f"{SECRET};{OTHER};x\n1;2;3\n",
    # a header of unexpected names: the missing-columns message used to list them
    "unknown header": f"employee_id,{SECRET},{OTHER}\nE1,a,b\n",
    "duplicate header": f"{SECRET},{SECRET},email,email\n1,2,3,4\n",
    "unterminated quote": f'employee_id,email\n"{SECRET},{OTHER}\nE2,x\n',
    "trailer row": f"employee_id,email,status\nE1,a@example.com,active\n{SECRET}\n",
    "bad utf-8": f"{SECRET}\n".encode() + b"\xff\xfe\n" + f"{OTHER}\n".encode(),
    "json lines keys": json.dumps({SECRET: OTHER}) + "\n",
    # cell values (an employee id matching gate.employee_id_pattern is an identifier, shown)
    "json lines values": json.dumps({"employee_id": "E1", "email": SECRET, "status": OTHER}) + "\n",
    "unsafe employee id": f"employee_id,email,status\n<{SECRET}>,{OTHER},active\n",
}
SUFFIX = {"json lines keys": ".jsonl", "json lines values": ".jsonl"}


@pytest.fixture
def config(sync_config):
    """The shipped config with Data Docs on (they are checked too) and the format by suffix."""
    return replace(
        sync_config,
        gate=replace(sync_config.gate, data_docs=True),
        export=replace(sync_config.export, format=None),
    )


def leaks(root: Path, *needles: str) -> list[str]:
    """Files under ``root`` whose bytes hold a needle."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {n}" for n in needles if n.encode() in data]
    return found


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_file_is_blocked_without_echoing_it(
    name, config, sync_home, tmp_path, caplog, proof
):
    content = HOSTILE[name]
    path = tmp_path / f"not-an-export{SUFFIX.get(name, '.csv')}"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    run_id = f"manual__hostile_{name.replace(' ', '_')}"
    caplog.set_level(logging.DEBUG)

    with pytest.raises(GateBlocked) as caught:
        validate_stage(run_id, str(path), config, scim=None)
    finish_stage(run_id, config, started_at=None)

    message = str(caught.value)
    run_dir = Run(run_id).root
    echoed = [n for n in (SECRET, OTHER) if n in message or n in caplog.text]
    proof.record(
        name,
        faults=["a file that is no export"],
        runs=1,
        inputs=1,
        secrets_found=len(echoed) + len(leaks(sync_home, SECRET, OTHER)),
    )
    assert "Gate blocked the HRIS export" in message
    for needle in (SECRET, OTHER):
        assert needle not in message
        assert needle not in caplog.text
    assert {"gate.json", "report.json", "rejects.csv"} <= {p.name for p in run_dir.iterdir()}
    assert leaks(run_dir, SECRET, OTHER) == []
    assert leaks(sync_home, SECRET, OTHER) == []  # audit log, Data Docs, state database
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "failed"


def test_the_missing_columns_message_counts_unknown_header_names(sync_config, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(f"employee_id,{SECRET},status,{OTHER}\nE1,x,active,y\n", encoding="utf-8")

    frame = read_export(str(path), sync_config.export)

    assert frame.attrs["export"]["header"] == ["employee_id", "status"]
    assert frame.attrs["export"]["unexpected_columns"] == 2


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b"PK\x03\x04" + SECRET.encode(), "export_unreadable"),  # gzip quoted the first bytes
        (SECRET.encode() + b"\n", "export_unreadable"),
    ],
)
def test_gzip_errors_quote_no_bytes(tmp_path, sync_config, content, rule):
    path = tmp_path / "export.csv.gz"
    path.write_bytes(content)

    with pytest.raises(ExportError) as caught:
        read_export(str(path), sync_config.export)

    assert caught.value.rule == rule
    assert "b'" not in str(caught.value) and SECRET[:2] not in str(caught.value)


def test_an_unreadable_file_is_a_gate_block_not_a_crash(tmp_path, sync_config):
    directory = tmp_path / "a-directory.csv"
    directory.mkdir()

    with pytest.raises(ExportError, match="cannot be read \\(IsADirectoryError\\)") as caught:
        read_export(str(directory), sync_config.export)
    assert caught.value.rule == "export_unreadable"


def test_a_real_export_with_one_unexpected_column_still_names_the_expected_ones(
    sync_config, write_export, tmp_path
):
    from tests.validation.sample_exports import clean_rows

    rows = [{"employee_id": r["employee_id"], SECRET: r["email"]} for r in clean_rows()]

    with pytest.raises(GateBlocked) as caught:
        validate_stage("manual__one_unexpected", str(write_export(rows)), sync_config, None)

    message = str(caught.value)
    assert "the file's header has 'employee_id' and 1 column(s) the config does not expect" in (
        message
    )
    assert SECRET not in message
