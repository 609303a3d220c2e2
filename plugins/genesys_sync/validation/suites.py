"""Load the versioned expectation suites (JSON in ``include/expectations``) into GX suites."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genesys_sync.config import ConfigError

if TYPE_CHECKING:
    import great_expectations as gx

DATASET_SUITE = "hris_export_dataset"
ROW_SUITE = "hris_export_rows"


class SuiteError(ConfigError):
    """An expectation suite file is missing or holds an expectation GX cannot use."""


@dataclass(frozen=True)
class Rule:
    """What an expectation reports when it fails: the rule name and the message template."""

    rule: str
    message: str


def load_suite(suites_dir: Path, name: str) -> gx.ExpectationSuite:
    """The suite ``<suites_dir>/<name>.json`` as a ``gx.ExpectationSuite`` (every expectation
    must carry ``meta.rule`` and ``meta.message``)."""
    import great_expectations as gx

    path = suites_dir / f"{name}.json"
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SuiteError(f"expectation suite not found: {path} (gate.suites_dir)") from exc
    except json.JSONDecodeError as exc:
        raise SuiteError(f"expectation suite {path} is not valid JSON: {exc}") from exc
    expectations = raw.get("expectations") or []
    for position, item in enumerate(expectations, start=1):
        meta = item.get("meta") or {}
        if not meta.get("rule") or not meta.get("message"):
            raise SuiteError(
                f"{path}: expectation #{position} ({item.get('type')}) needs meta.rule and "
                "meta.message (the rule name and the message the gate reports)"
            )
    try:
        suite = gx.ExpectationSuite(
            name=raw.get("name") or name,
            expectations=expectations,
            meta=raw.get("meta"),
            notes=raw.get("notes"),
        )
    except Exception as exc:  # pydantic / GX errors: name the file
        raise SuiteError(f"{path}: GX cannot build the suite: {exc}") from exc
    if len(suite.expectations) != len(expectations):  # GX logs and drops invalid ones
        bad = [
            f"#{position} {item.get('type')}"
            for position, item in enumerate(expectations, start=1)
            if not gx.ExpectationSuite(name="probe", expectations=[item]).expectations
        ]
        raise SuiteError(f"{path}: GX rejected expectation(s) {', '.join(bad)}; check their kwargs")
    return suite


def rule_of(meta: dict[str, Any] | None) -> Rule:
    """The rule an expectation's ``meta`` names."""
    meta = meta or {}
    return Rule(rule=str(meta.get("rule", "unnamed_rule")), message=str(meta.get("message", "")))
