"""The HTML of the run list and its chart: the last 30 runs, the newest on the right, escaped."""

from __future__ import annotations

import re

from genesys_sync.ui import views
from genesys_sync.ui.artifacts import RunSummary


def _runs(n: int) -> list[RunSummary]:
    """``n`` runs, newest first (as ``list_runs`` returns them); run i created i users."""
    return [
        RunSummary(
            run_id=f"manual__{i:03d}",
            status="success" if i % 2 else "failed",
            dry_run=False,
            finished_at=f"2026-11-{1 + i % 28:02d}",
            created=i,
            api_calls=10 + i,
            duration_s=1.5 * i,
        )
        for i in reversed(range(n))
    ]


def test_the_chart_shows_the_last_30_runs_and_the_table_all_of_them():
    html = views.runs_page(_runs(35), "/genesys-sync")
    charts = re.findall(r'<svg role="img" aria-label="([^"]+)".*?</svg>', html, flags=re.S)
    assert charts == [label for _, label, _ in views.SERIES]
    created = re.search(r'aria-label="created".*?</svg>', html, flags=re.S).group(0)
    assert created.count("<rect") == 30
    assert "manual__004" not in created and "manual__005" in created  # the oldest 5 left out
    assert html.count('<tr><td><a href="/genesys-sync/runs/manual__') == 35


def test_with_few_runs_the_newest_bar_is_on_the_right():
    created = re.search(r'aria-label="created".*?</svg>', views.runs_page(_runs(2), ""), re.S)
    xs = [float(x) for x in re.findall(r'<rect x="([\d.]+)"', created.group(0))]
    assert len(xs) == 2 and xs[0] < xs[1] and xs[1] > 250  # slots 29 and 30 of 30


def test_run_ids_and_texts_are_escaped():
    hostile = RunSummary(
        run_id='manual__"><script>x</script>', status="<b>", dry_run=True, finished_at="<i>"
    )
    html = views.runs_page([hostile], "/genesys-sync")
    assert "<script>x" not in html and "<b>" not in html and "<i>" not in html
    assert "manual__&quot;&gt;&lt;script&gt;" in html
    assert 'href="/genesys-sync/runs/manual__%22%3E%3Cscript%3Ex%3C%2Fscript%3E"' in html


def test_an_empty_list_says_so():
    assert "No sync run has written a report yet." in views.runs_page([], "")
