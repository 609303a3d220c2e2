"""Escape text from outside the sync (employee ids, reasons, run ids) for Markdown and HTML.

``plan.md`` and the approval request (Airflow renders its body as Markdown) show values that
come from the HRIS export, the state database or a trigger request. Escaped, such a value is
shown as the text it is: no HTML (``<script>``), no link or image (``[x](y)``), no code span,
table cell break or emphasis, no line break or bidi trick, and no spreadsheet formula
(``=HYPERLINK(...)``) at its start.
"""

from __future__ import annotations

import re

#: Control characters, line/paragraph separators and bidi embeddings/overrides/isolates.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
#: Characters Markdown (CommonMark + GitHub's tables and strikethrough) may interpret.
_MARKDOWN = re.compile(r"([\\`*_\[\]()!|~#{}])")
#: A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@")


def md_text(value: object) -> str:
    """``value`` as literal text inside a Markdown (or HTML) paragraph, list item or cell."""
    text = _INVISIBLE.sub("\N{REPLACEMENT CHARACTER}", str(value))
    if text.startswith(FORMULA_START):
        text = "'" + text
    text = "".join(_HTML.get(ch, ch) for ch in text)
    return _MARKDOWN.sub(r"\\\1", text)


def md_code(value: object) -> str:
    """``value`` as a Markdown code span (for paths): nothing inside is interpreted."""
    text = _INVISIBLE.sub("\N{REPLACEMENT CHARACTER}", str(value))
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
