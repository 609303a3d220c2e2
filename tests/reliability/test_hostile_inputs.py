"""Hostile exports and params, property-based (issue 12, item 8), with ``hypothesis``.

Generated values (any Unicode but surrogates, control and bidi-override characters, SCIM filter
metacharacters, Markdown/HTML/formula markup, huge fields) go where an HRIS export or a trigger
form can put them, and each property is checked against the real component: the whole gate (GX
suites included) on a generated export, the SCIM filter literal parsed back by the sandbox's
filter parser (scim2-models), the Markdown escaping of ``plan.md``, and the ``export`` run param
against the allow-list on a real directory with a symlink out of it. Examples are derandomized
so CI and a laptop try the same inputs.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
import unicodedata
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scim2_models import ScimFilter

from genesys_sync.config import DEFAULT_EMPLOYEE_ID_PATTERN
from genesys_sync.export import ExportNotAllowed, resolve_run_location
from genesys_sync.markup import md_text
from genesys_sync.scim.messages import eq_filter
from genesys_sync.stages.common import GateBlocked
from genesys_sync.stages.validate import validate_stage
from tests.fixtures.expect import SAMPLE, read_rows
from tests.pipeline.harness import stage_config, sync_home_env

PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
METACHARACTERS = ['"', "\\", " or ", ") ", "[", "]", "*", "`", "<script>", "](x)", "=", "|"]
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
MARK = "Zq9"  # starts every generated cell value, so a leak of one can be searched for

any_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
hostile = st.one_of(
    any_text,
    st.lists(st.sampled_from(METACHARACTERS) | any_text, max_size=6).map("".join),
    st.sampled_from(["\u202eevil", "a\x00b", "line\nbreak", "tab\tbed", '=HYPERLINK("x")']),
    st.integers(1_000, 70_000).map(lambda n: "x" * n),  # huge fields
)


def _text_without_controls(value: str) -> bool:
    return not any(unicodedata.category(ch) == "Cc" for ch in value) and not UNSAFE.search(value)


@pytest.fixture
def tried():
    return []


def test_filter_literals_parse_back_to_the_value(proof, tried):
    @PROPERTY
    @given(hostile.filter(bool))  # no look-up is by an empty value (scim2-models refuses "")
    def check(value: str) -> None:
        tried.append(value)
        node = ScimFilter(eq_filter("externalId", value)).ast
        assert (node.attr_path.attr, node.value) == ("externalId", value)

    check()
    proof.record("filter literals", faults=["hostile values"], inputs=len(tried))


def test_markdown_escaping_leaves_no_markup_or_formula(proof, tried):
    @PROPERTY
    @given(hostile)
    def check(value: str) -> None:
        tried.append(value)
        shown = md_text(value)
        assert "<" not in shown and ">" not in shown
        assert not UNSAFE.search(shown), "no control or bidi character survives"
        assert not shown.startswith(("=", "+", "-", "@"))
        unescaped = re.sub(r"\\.", "", shown)  # every Markdown special character is escaped
        assert not re.search(r"[\\`*_\[\]()!|~#{}]", unescaped), shown

    check()
    proof.record("markdown escaping", faults=["hostile values"], inputs=len(tried))


def test_the_export_param_never_leaves_the_allowed_directory(tmp_path, proof, tried):
    allowed = tmp_path / "drop"
    (allowed / "2026").mkdir(parents=True)
    (allowed / "escape").symlink_to("/etc", target_is_directory=True)
    outside = str(tmp_path / "other")
    config = dataclasses.replace(
        stage_config().export, location=str(allowed / "{ds}" / "users.csv"), allowed_locations=()
    )
    pieces = st.sampled_from(
        ["..", ".", "escape", "2026", "users.csv", "{ds}", "~", "", "%2e%2e", "\x00", "a b"]
    )
    prefixes = st.sampled_from(
        [str(allowed), outside, "file://" + str(allowed), "http://127.0.0.1:9", "s3://b", "", "/"]
    )
    params = st.one_of(
        st.tuples(prefixes, st.lists(pieces | any_text, max_size=6)).map(
            lambda t: "/".join([t[0], *t[1]])
        ),
        hostile,
    )

    @PROPERTY
    @given(params)
    def check(param: str) -> None:
        tried.append(param)
        try:
            chosen = resolve_run_location(config, date(2026, 12, 1), param=param, environ={})
        except ExportNotAllowed as refused:
            assert "was refused" in str(refused) and "nothing was read" in str(refused)
            return
        if not param.strip():
            return  # no param: the configured location
        assert Path(chosen).resolve().is_relative_to(allowed.resolve()), (param, chosen)

    check()
    proof.record("export param", faults=["hostile params"], inputs=len(tried))


def _hostile_export(path: Path, values: dict[str, list[str]]) -> list[dict[str, str]]:
    rows = read_rows(SAMPLE)[:8]
    for column, column_values in values.items():
        for row, value in zip(rows, column_values, strict=False):
            row[column] = value if column == "employee_id" else MARK + value
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def test_the_gate_quarantines_or_blocks_hostile_rows_and_echoes_none(
    tmp_path, caplog, proof, tried
):
    config = stage_config()
    columns = ["employee_id", "email", "display_name", "first_name", "title", "work_phone"]
    caplog.set_level(logging.DEBUG)
    leaked: list[str] = []
    passed: list[int] = []  # examples whose gate passed: their accepted rows are checked

    @settings(PROPERTY, max_examples=12)
    @given(st.fixed_dictionaries({c: st.lists(hostile, max_size=3) for c in columns}))
    def check(values: dict[str, list[str]]) -> None:
        n = len(tried)
        tried.append(values)
        home = tmp_path / f"home-{n}"
        home.mkdir()
        export = tmp_path / f"export-{n}.csv"
        _hostile_export(export, values)
        caplog.clear()
        with sync_home_env(home):
            try:
                gate = validate_stage(f"hostile-{n}", str(export), config, scim=None)
                message = ""
            except GateBlocked as blocked:
                gate, message = None, str(blocked)
            shown = "\n".join([message, caplog.text, *_run_files(home, "gate.json")])
            leaked.extend(
                v
                for c, vs in values.items()
                if c != "employee_id"
                for v in vs
                if len(v) >= 4 and MARK + v in shown
            )
            if gate is None:
                return
            accepted = pd.read_parquet(gate["accepted_path"]).astype(str)
            passed.append(len(accepted))
        for eid in accepted["employee_id"]:
            assert re.fullmatch(DEFAULT_EMPLOYEE_ID_PATTERN, eid), eid
        for column in ("display_name", "first_name", "title"):
            assert all(_text_without_controls(v) for v in accepted[column]), column

    check()
    proof.record(
        "gate on generated exports",
        faults=["hostile exports"],
        runs=len(tried),
        employees=8 * len(tried),
        inputs=len(tried),
        secrets_found=len(leaked),
    )
    assert leaked == [], "a cell value was echoed in a message, a log or gate.json"
    assert passed and len(passed) < len(tried), "both outcomes were tried: passed and blocked"


def _run_files(home: Path, name: str) -> list[str]:
    return [p.read_text(errors="replace") for p in (home / "runs").glob(f"*/{name}")]
