"""Genesys's list filters: active users by default, and its short attribute names.

Genesys documents ``email eq``, ``manager eq <uuid>``, ``division eq <name>`` and
``employeeNumber eq``, which RFC 7644 would spell ``emails.value``, and the enterprise
extension's ``manager.value``, ``division`` and ``employeeNumber``. The filter is parsed with
scim2-models, these names are rewritten into their RFC paths, and scim2-server evaluates it.
"""

from typing import Any

from scim2_models import SCIMException, ScimFilter
from scim2_models.path import (
    AttrPath,
    Comparison,
    FilterNode,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from genesys_sandbox.rules import ENTERPRISE_SCHEMA

DEFAULT_LIST_FILTER = "active eq true"
"""Genesys lists active users only when a search has no filter."""

ENTERPRISE_ALIASES = {
    "manager": ("manager", "value"),
    "division": ("division", None),
    "employeenumber": ("employeeNumber", None),
}
"""Short names of enterprise attributes, lower-cased, and the attribute they stand for."""

EMAIL = "email"
"""Matches ``userName`` or any ``emails.value``: Genesys mirrors userName as an email."""


class AliasRewriter(FilterVisitor[FilterNode]):
    """Rewrite Genesys's short attribute names into RFC 7644 attribute paths."""

    def visit_comparison(self, node: Comparison) -> FilterNode:
        return self.rewrite(node.attr_path, lambda path: Comparison(path, node.op, node.value))

    def visit_present(self, node: Present) -> FilterNode:
        return self.rewrite(node.attr_path, Present)

    def visit_not(self, node: Not) -> FilterNode:
        return Not(self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr) -> FilterNode:
        return LogicalExpr(node.op, tuple(self.visit(term) for term in node.terms))

    def visit_value_path(self, node: ValuePath) -> FilterNode:
        return node

    @staticmethod
    def rewrite(path: AttrPath, build: Any) -> FilterNode:
        """Build the node for ``path``, or for the RFC paths its short name stands for."""
        name = path.attr.casefold()
        if path.uri is not None:
            return build(path)
        if name == EMAIL and path.sub_attr is None:
            return LogicalExpr(
                LogicalOperator.or_,
                (build(AttrPath("userName")), build(AttrPath("emails", "value"))),
            )
        if name in ENTERPRISE_ALIASES:
            attr, sub_attr = ENTERPRISE_ALIASES[name]
            return build(AttrPath(attr, path.sub_attr or sub_attr, ENTERPRISE_SCHEMA))
        return build(path)


def genesys_filter(expression: str) -> str:
    """Return a filter with Genesys's short names rewritten; an invalid one is left as it is."""
    try:
        node = ScimFilter(expression).ast
    except SCIMException:
        return expression
    return str(AliasRewriter().visit(node))


def with_genesys_filter(payload: Any) -> Any:
    """Return a search payload whose filter is Genesys's: rewritten, or active users only."""
    if not isinstance(payload, dict):
        return payload
    key = next((k for k in payload if k.casefold() == "filter"), None)
    if key is None:
        return {**payload, "filter": DEFAULT_LIST_FILTER}
    if not isinstance(payload[key], str):
        return payload
    return {**payload, key: genesys_filter(payload[key])}
