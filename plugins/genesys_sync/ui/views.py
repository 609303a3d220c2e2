"""HTML pages of the sync's UI: the run list with its chart, one run, its plan and its report.

Pure functions from the reader's objects (``ui.artifacts``) to HTML strings: every value is
escaped, the plan's Markdown is rendered with raw HTML off, the chart is inline SVG (no
script). ``personal``: whether the viewer may see personal data (employee ids, rejected rows,
held removals); without it, only counts are shown. Imports nothing from Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from genesys_sync.ui.artifacts import RunArtifacts, RunSummary

#: The series of the chart: (attribute of RunSummary, label, colour).
SERIES = (
    ("created", "created", "#2f855a"),
    ("updated", "updated", "#2b6cb0"),
    ("deactivated", "deactivated", "#c05621"),
    ("rejected", "rejected", "#805ad5"),
    ("failed", "failed", "#c53030"),
    ("api_calls", "requests", "#4a5568"),
    ("duration_s", "duration (s)", "#2c7a7b"),
)
#: How many runs the chart shows.
CHART_RUNS = 30
#: Report keys that name employees (left out for viewers without personal-data access).
PERSONAL_REPORT_KEYS = ("quarantined_employee_ids", "refused")

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1rem 1.5rem;
color:#1a202c;font-size:14px}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.6rem}h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #cbd5e0;padding:.25rem .5rem;
text-align:left}th{background:#edf2f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
.success{color:#2f855a;font-weight:600}.failed{color:#c53030;font-weight:600}
.note{color:#4a5568}.badge{background:#edf2f7;border-radius:4px;padding:0 .3rem}
pre{background:#f7fafc;border:1px solid #e2e8f0;padding:.5rem;overflow:auto;max-height:30rem}
nav a{margin-right:1rem}.charts{display:flex;flex-wrap:wrap;gap:1rem}
.plan{border:1px solid #e2e8f0;padding:0 1rem;max-width:60rem}
"""


def page(title: str, body: str, base: str) -> str:
    """A complete page: ``base`` is the app's mount path (links are built from it)."""
    nav = (
        f'<nav><a href="{escape(base)}/">All sync runs</a>'
        f'<a href="{escape(base)}/runs.json">runs.json</a></nav>'
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{nav}<h1>{escape(title)}</h1>{body}</body></html>"
    )


def run_href(base: str, run_id: str, tail: str = "") -> str:
    return f"{base}/runs/{quote(run_id, safe='')}{tail}"


def _status(summary: RunSummary | None) -> str:
    if summary is None:
        return '<span class="note">no report yet</span>'
    css = "success" if summary.status == "success" else "failed"
    dry = ' <span class="badge">dry run</span>' if summary.dry_run else ""
    return f'<span class="{css}">{escape(summary.status)}</span>{dry}'


def runs_page(runs: Sequence[RunSummary], base: str) -> str:
    """The recent runs (newest first) with their counts, and the chart of the last 30."""
    if not runs:
        body = '<p class="note">No sync run has written a report yet.</p>'
        return page("Genesys user sync: runs", body, base)
    head = (
        "<tr><th>run</th><th>status</th><th>finished</th><th>created</th><th>updated</th>"
        "<th>deactivated</th><th>rejected</th><th>failed</th><th>held</th><th>requests</th>"
        "<th>duration (s)</th></tr>"
    )
    rows = []
    for r in runs:
        cells = [r.created, r.updated, r.deactivated, r.rejected, r.failed, r.held, r.api_calls]
        numbers = "".join(f'<td class="n">{c}</td>' for c in cells)
        rows.append(
            f'<tr><td><a href="{escape(run_href(base, r.run_id))}">{escape(r.run_id)}</a></td>'
            f"<td>{_status(r)}</td><td>{escape(r.finished_at or '-')}</td>{numbers}"
            f'<td class="n">{r.duration_s:.1f}</td></tr>'
        )
    body = (
        "<h2>Last 30 runs</h2>"
        + charts(list(reversed(runs[:CHART_RUNS])))
        + "<h2>Recent runs</h2><table>"
        + head
        + "".join(rows)
        + "</table>"
    )
    return page("Genesys user sync: runs", body, base)


def charts(runs: Sequence[RunSummary]) -> str:
    """One small inline-SVG bar chart per series, oldest run on the left."""
    return (
        '<div class="charts">'
        + "".join(
            bar_chart(label, [getattr(r, a) for r in runs], colour, runs)
            for a, label, colour in SERIES
        )
        + "</div>"
    )


def bar_chart(label: str, values: Sequence[float], colour: str, runs: Sequence[RunSummary]) -> str:
    width, height, pad = 300, 120, 22
    highest = max(values, default=0)
    top = highest or 1  # the scale; all zero: flat bars
    # One slot per run of the last CHART_RUNS, the newest on the right: few runs, narrow bars.
    slots = max(CHART_RUNS, len(values))
    step = (width - 2 * pad) / slots
    bars = []
    for i, (value, run) in enumerate(zip(values, runs, strict=True)):
        h = (height - 2 * pad) * (value / top)
        x = pad + (slots - len(values) + i) * step
        y = height - pad - h
        shown = f"{value:.1f}" if isinstance(value, float) else str(value)
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{escape(run.run_id)}: {escape(shown)}</title></rect>'
        )
    top_label = f"{highest:.1f}" if isinstance(highest, float) else str(highest)
    return (
        f'<svg role="img" aria-label="{escape(label)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="{pad}" y="14" font-size="12" font-weight="600">{escape(label)}</text>'
        f'<text x="{width - pad}" y="14" font-size="10" text-anchor="end">max {top_label}</text>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#a0aec0"/>'
        + "".join(bars)
        + f'<text x="{pad}" y="{height - 6}" font-size="10">oldest</text>'
        f'<text x="{width - pad}" y="{height - 6}" font-size="10" text-anchor="end">newest</text>'
        "</svg>"
    )


def _counts_table(summary: RunSummary) -> str:
    cells = [
        ("created", summary.created),
        ("updated", summary.updated),
        ("deactivated", summary.deactivated),
        ("held (awaiting approval)", summary.held),
        ("rejected by the gate", summary.rejected),
        ("failed", summary.failed),
        ("writes", summary.writes),
        ("requests", summary.api_calls),
        ("duration (s)", f"{summary.duration_s:.1f}"),
    ]
    rows = "".join(
        f'<tr><th>{escape(k)}</th><td class="n">{escape(str(v))}</td></tr>' for k, v in cells
    )
    return f"<table>{rows}</table>"


def _no_access() -> str:
    return (
        '<p class="note">Personal data (employee ids, rejected rows, held removals) is shown to '
        "users who may edit the <code>genesys_user_sync</code> DAG only.</p>"
    )


def run_page(run: RunArtifacts, base: str, personal: bool) -> str:
    """One run: status and counts, links to its plan, report and Data Docs, and (``personal``)
    its held removals, rejected rows and refused operations."""
    summary = run.summary
    parts = [f"<p>Status: {_status(summary)}</p>"]
    if summary is not None:
        parts.append(_counts_table(summary))
    if run.report and run.report.get("failure_reason"):
        parts.append(f"<p><b>Failure:</b> {escape(str(run.report['failure_reason']))}</p>")
    links = []
    if run.plan is not None or run.plan_markdown is not None:
        links.append(f'<a href="{escape(run_href(base, run.run_id, "/plan"))}">Plan</a>')
    if run.report is not None:
        links.append(f'<a href="{escape(run_href(base, run.run_id, "/report"))}">Report</a>')
    if personal and run.rejects is not None:
        href = run_href(base, run.run_id, "/rejects.csv")
        links.append(f'<a href="{escape(href)}">rejects.csv</a>')
    if personal and run.data_docs is not None:
        href = run_href(base, run.run_id, "/data-docs/")
        links.append(f'<a href="{escape(href)}">Data Docs</a>')
    parts.append("<p>" + " | ".join(links) + "</p>" if links else "")
    if not personal:
        parts.append(_no_access())
    else:
        parts.append(_held_section(run.held))
        parts.append(_rejects_section(run))
        if run.refused:
            parts.append(_refused_section(run.refused))
    return page(f"Sync run {run.run_id}", "".join(parts), base)


def _held_section(held: Sequence[Mapping[str, Any]]) -> str:
    if not held:
        return "<h2>Held removals</h2><p class=note>None.</p>"
    rows = "".join(
        f"<tr><td>{escape(str(c.get('employee_id')))}</td><td>{escape(str(c.get('kind')))}</td>"
        f"<td>{escape(str(c.get('reason') or ''))}</td></tr>"
        for c in held
    )
    return (
        f"<h2>Held removals ({len(held)})</h2><p class=note>Above the safety threshold: applied "
        "only once approved (task <code>approve_removals</code>).</p>"
        f"<table><tr><th>employee id</th><th>change</th><th>reason</th></tr>{rows}</table>"
    )


def _rejects_section(run: RunArtifacts) -> str:
    rejects = run.rejects
    if rejects is None or rejects.total == 0:
        return "<h2>Rejected rows</h2><p class=note>None.</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in rejects.header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in rejects.rows
    )
    more = (
        f"<p class=note>{rejects.total - len(rejects.rows)} more in rejects.csv.</p>"
        if rejects.total > len(rejects.rows)
        else ""
    )
    return (
        f"<h2>Rejected rows ({rejects.total})</h2><p class=note>Quarantined by the gate: "
        f"not synced this run.</p><table><tr>{head}</tr>{rows}</table>{more}"
    )


def _refused_section(refused: Sequence[Mapping[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{escape(str(r.get('employee_id')))}</td><td>{escape(str(r.get('operation')))}</td>"
        f"<td>{escape(str(r.get('status')))}</td><td>{escape(str(r.get('detail') or ''))}</td></tr>"
        for r in refused
    )
    return (
        f"<h2>Refused by the target ({len(refused)})</h2><table><tr><th>employee id</th>"
        f"<th>operation</th><th>HTTP</th><th>detail</th></tr>{rows}</table>"
    )


def render_markdown(text: str) -> str:
    """Markdown to HTML with raw HTML off: a ``<script>`` in the text stays text."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    return md.render(text)


def plan_page(run: RunArtifacts, base: str, personal: bool) -> str:
    """The run's plan: ``plan.md`` as HTML (``personal``), else only its counts."""
    back = f'<p><a href="{escape(run_href(base, run.run_id))}">Back to the run</a></p>'
    counts = (run.plan or {}).get("counts") or {}
    if personal and run.plan_markdown is not None:
        body = f'<div class="plan">{render_markdown(run.plan_markdown)}</div>'
    else:
        rows = "".join(
            f'<tr><th>{escape(str(k))}</th><td class="n">{escape(str(v))}</td></tr>'
            for k, v in counts.items()
            if v
        )
        body = f"<table><tr><th>change</th><th>count</th></tr>{rows}</table>" if rows else ""
        body += _no_access() if not personal else '<p class="note">No plan.md.</p>'
    if (run.plan or {}).get("error"):
        body = f"<p><b>The plan stopped:</b> {escape(str(run.plan['error']))}</p>" + body
    return page(f"Plan of sync run {run.run_id}", back + body, base)


def report_page(run: RunArtifacts, base: str, personal: bool) -> str:
    """The run's report: its figures, then ``report.json`` (personal keys only if allowed)."""
    back = f'<p><a href="{escape(run_href(base, run.run_id))}">Back to the run</a></p>'
    report = dict(run.report or {})
    summary = run.summary
    parts = [back, f"<p>Status: {_status(summary)}</p>"]
    if summary is not None:
        parts.append(_counts_table(summary))
    latency = report.get("latency_ms") or {}
    if latency:
        parts.append(
            "<p>Latency: p50 {} ms, p95 {} ms, max {} ms; {} answered 429, {} retried.</p>".format(
                *(escape(str(latency.get(k, 0))) for k in ("p50", "p95", "max")),
                escape(str(report.get("http_429", 0))),
                escape(str(report.get("retries", 0))),
            )
        )
    shown = report if personal else redact_report(report)
    parts.append(
        "<h2>report.json</h2><pre>"
        + escape(json.dumps(shown, indent=2, sort_keys=True, default=str))
        + "</pre>"
    )
    if not personal:
        parts.append(_no_access())
    return page(f"Report of sync run {run.run_id}", "".join(parts), base)


def redact_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report without the keys that name employees."""
    return {k: v for k, v in report.items() if k not in PERSONAL_REPORT_KEYS}


def not_found_page(what: str, base: str) -> str:
    return page("Not found", f"<p>{escape(what)}</p>", base)
