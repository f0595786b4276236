"""Checking the SQL expressions a mapping may contain, before any data is touched.

A mapping's expressions are spliced into the adapter's SQL, so they must be *one scalar
expression over the source row* and nothing else: DuckDB's own parser (`json_serialize_sql`)
reads them, and anything that could reach outside the row (a subquery, a table function, a
window, a positional reference) or would make a re-run differ (random(), now()) is refused.
The source columns an expression names are returned, so that they can be checked against the
real file's header with a message that names the YAML key.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

# Functions whose result differs between runs (re-runs must give byte-identical files) or
# that read the machine's state.
FORBIDDEN_FUNCTIONS = frozenset(
    {
        "random", "setseed", "uuid", "gen_random_uuid", "uuidv4", "uuidv7", "now",
        "get_current_timestamp", "current_timestamp", "current_date", "current_time",
        "transaction_timestamp", "today", "get_current_time", "nextval", "currval", "getenv",
        "current_setting", "current_query", "current_schema", "current_database",
    }
)
FORBIDDEN_CLASSES = {
    "SUBQUERY": "subqueries are not allowed",
    "WINDOW": "window functions are not allowed",
    "POSITIONAL_REFERENCE": "positional references (#1) are not allowed",
    "STAR": "* is not allowed",
    "PARAMETER": "parameters are not allowed",
}

# Columns every expression may use besides the source file's own columns.
PSEUDO_COLUMNS = ("_delivery", "_file", "_line")


class ExpressionError(ValueError):
    """The expression is not a single, safe, deterministic scalar expression."""


def expression_columns(con: duckdb.DuckDBPyConnection, expression: str) -> tuple[str, ...]:
    """The column names `expression` refers to (in order of appearance, unique).

    Raises ExpressionError naming what is wrong with it.
    """
    if not expression.strip():
        raise ExpressionError("empty expression")
    text = con.execute("select json_serialize_sql(?)", [f"select ({expression})"]).fetchone()
    tree = json.loads(text[0])  # type: ignore[index]
    if tree.get("error"):
        raise ExpressionError(f"not a valid SQL expression: {tree.get('error_message')}")
    statements = tree.get("statements", [])
    if len(statements) != 1:
        raise ExpressionError("not a single SQL expression")
    node = statements[0]["node"]
    if (
        node.get("type") != "SELECT_NODE"
        or len(node.get("select_list", [])) != 1
        or node.get("from_table", {}).get("type") != "EMPTY"
        or node.get("where_clause") is not None
        or node.get("group_expressions")
        or node.get("having") is not None
        or node.get("modifiers")
        or node.get("cte_map", {}).get("map")
    ):
        raise ExpressionError("not a single SQL expression")
    found: list[str] = []
    _walk(node["select_list"][0], frozenset(), found)
    return tuple(dict.fromkeys(found))


def _walk(node: Any, bound: frozenset[str], found: list[str]) -> None:
    """Collect COLUMN_REF names, refusing forbidden node classes and functions."""
    if isinstance(node, list):
        for item in node:
            _walk(item, bound, found)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("class")
    if kind in FORBIDDEN_CLASSES:
        raise ExpressionError(FORBIDDEN_CLASSES[kind])
    if kind == "COLUMN_REF":
        names = node.get("column_names", [])
        if len(names) != 1:
            raise ExpressionError(
                f"qualified name {'.'.join(names)!r} is not allowed; name the source column "
                "alone (in double quotes if it has spaces)"
            )
        if names[0].lower() not in bound:
            found.append(names[0])
        return
    if kind == "FUNCTION" and str(node.get("function_name", "")).lower() in FORBIDDEN_FUNCTIONS:
        raise ExpressionError(
            f"{node['function_name']}() is not allowed: a re-run must give the same result"
        )
    if kind == "LAMBDA":
        parameters = _lambda_parameters(node.get("lhs"))
        _walk(node.get("expr"), bound | parameters, found)
        return
    for key, value in node.items():
        if key in ("class", "type", "alias"):
            continue
        _walk(value, bound, found)


def _lambda_parameters(lhs: Any) -> frozenset[str]:
    names: set[str] = set()
    stack = [lhs]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if item.get("class") == "COLUMN_REF":
                names.update(n.lower() for n in item.get("column_names", []))
            else:
                stack.extend(v for k, v in item.items() if k not in ("class", "type"))
    return frozenset(names)
