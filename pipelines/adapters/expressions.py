"""Checking the SQL expressions a mapping may contain, before any data is touched.

A mapping is trusted configuration, but its expressions are spliced into the adapter's SQL,
so each must be *one scalar expression over the source row* and nothing else. They are
**parsed, not screened**: sqlglot parses the text and every node of the tree must be on an
allow-list — column references, literals, operators, CASE/IF, casts and a fixed set of scalar
functions (text, numbers, dates, regular expressions). Anything else — a table function
(`read_csv(...)`), a subquery, `sql_auto_complete(...)` (which makes DuckDB install an
extension over the network), `getenv`, `random()`, a window, a lambda — is an error naming the
mapping key, at parse time, before any SQL runs.

The text is then parsed again by DuckDB itself (`json_serialize_sql`, a parse without binding
or execution), the parser that will run it: its tree must hold the same kinds of nodes and only
allowed functions, so a difference between the two parsers cannot smuggle anything through.
Comments, `;` and dollar-quoted strings are refused outright: no text may hide from either
parser. The source columns an expression names are returned, so that they can be checked
against the real file's header with a message that names the YAML key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

# sqlglot node classes an expression may consist of: references, literals, operators and
# conditionals, casts.
_ALLOWED_NODE_NAMES = (
    "Column", "Identifier", "Literal", "Boolean", "Null", "Paren", "Neg", "Not", "And", "Or",
    "Add", "Sub", "Mul", "Div", "IntDiv", "Mod", "DPipe", "EQ", "NEQ", "GT", "GTE", "LT", "LTE",
    "NullSafeEQ", "NullSafeNEQ", "Is", "In", "Between", "Like", "ILike", "Case", "If", "Cast",
    "TryCast", "DataType", "DataTypeParam", "Var",
    # Scalar functions sqlglot knows by name.
    "Coalesce", "Nullif", "Concat", "ConcatWs", "Lower", "Upper", "Trim", "Length", "Substring",
    "Left", "Right", "Replace", "SplitPart", "RegexpLike", "RegexpILike", "RegexpFullMatch",
    "RegexpReplace", "RegexpExtract", "StrPosition", "Round", "Abs", "Floor", "Ceil",
    "Greatest", "Least", "DateDiff", "DateTrunc", "Extract", "StrToTime", "StrToDate",
    "TimeToStr", "Pad", "Reverse", "StartsWith", "EndsWith", "Contains", "Initcap",
)
ALLOWED_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name) for name in _ALLOWED_NODE_NAMES if hasattr(exp, name)
)
# DuckDB functions sqlglot does not know (parsed as anonymous functions), allowed by name.
ALLOWED_ANONYMOUS = frozenset(
    {"strip_accents", "lcase", "ucase", "ltrim", "rtrim", "lpad", "rpad", "prefix", "suffix",
     "nfc_normalize", "strptime", "try_strptime", "strftime", "regexp_matches",
     "regexp_full_match", "starts_with", "ends_with", "contains", "reverse", "initcap"}
)
# The same allow-list in DuckDB's own names (its tree calls operators functions too).
ALLOWED_DUCKDB_FUNCTIONS = ALLOWED_ANONYMOUS | frozenset(
    {"+", "-", "*", "/", "//", "%", "||", "~~", "!~~", "~~*", "!~~*", "nullif", "concat",
     "concat_ws", "lower", "upper", "trim", "length", "len", "substr", "substring", "left",
     "right", "replace", "split_part", "regexp_replace", "regexp_extract", "strpos", "instr",
     "position", "round", "abs", "floor", "ceil", "ceiling", "greatest", "least", "date_diff",
     "datediff", "date_trunc", "datetrunc", "date_part", "datepart", "extract", "if",
     "array_extract", "list_extract"}
)
FORBIDDEN_CLASSES = {
    "SUBQUERY": "subqueries are not allowed",
    "WINDOW": "window functions are not allowed",
    "POSITIONAL_REFERENCE": "positional references (#1) are not allowed",
    "STAR": "* is not allowed",
    "PARAMETER": "parameters are not allowed",
    "LAMBDA": "lambdas are not allowed",
}
# Outside quoted strings and names: text that could hide from one parser or end the statement.
_HIDING = re.compile(r"--|/\*|;|\$|\b[eE]'")
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")

# Columns every expression may use besides the source file's own columns.
PSEUDO_COLUMNS = ("_delivery", "_file", "_line")


class ExpressionError(ValueError):
    """The expression is not a single scalar expression made of allowed parts."""


def expression_columns(con: duckdb.DuckDBPyConnection, expression: str) -> tuple[str, ...]:
    """The column names `expression` refers to (in order of appearance, unique).

    Raises ExpressionError naming what is wrong with it (the caller prefixes the YAML key).
    """
    if not expression.strip():
        raise ExpressionError("empty expression")
    unquoted = _QUOTED.sub(lambda m: "''" if m.group().startswith("'") else " ", expression)
    if _HIDING.search(unquoted):
        raise ExpressionError(
            "not a valid SQL expression: comments (--, /*), ';', '$' and E'' strings are not "
            "allowed outside quotes"
        )
    check_allowed(expression)
    return _duckdb_columns(con, expression)


def check_allowed(expression: str) -> None:
    """Parse `expression` with sqlglot and refuse every node that is not on the allow-list."""
    try:
        tree = sqlglot.parse_one(f"select ({expression})", read="duckdb")
    except SqlglotError as exc:
        raise ExpressionError(f"not a valid SQL expression: {str(exc).splitlines()[0]}") from exc
    if (
        not isinstance(tree, exp.Select)
        or len(tree.expressions) != 1
        or any(tree.args.get(key) for key in tree.args if key != "expressions")
    ):
        raise ExpressionError("not a single SQL expression")
    for node in tree.expressions[0].walk():
        _check_node(node, expression)


def _check_node(node: exp.Expression, text: str) -> None:
    if isinstance(node, (exp.Subquery, exp.Select, exp.Query)):
        raise ExpressionError("subqueries are not allowed")
    if isinstance(node, exp.Window):
        raise ExpressionError("window functions are not allowed")
    if isinstance(node, exp.Star):
        raise ExpressionError("* is not allowed")
    if isinstance(node, (exp.Placeholder, exp.Parameter)):
        raise ExpressionError("parameters are not allowed")
    if isinstance(node, exp.Column) and node.table:
        raise ExpressionError(
            f"qualified name {node.sql(dialect='duckdb')!r} is not allowed; name the source "
            "column alone (in double quotes if it has spaces)"
        )
    if isinstance(node, exp.In) and node.args.get("query"):
        raise ExpressionError("subqueries are not allowed")
    if isinstance(node, exp.Anonymous):
        if node.name.lower() not in ALLOWED_ANONYMOUS:
            raise ExpressionError(_not_allowed(node.name))
        return
    if not isinstance(node, ALLOWED_NODES):
        if isinstance(node, exp.Func):
            raise ExpressionError(_not_allowed(_written_name(node, text)))
        raise ExpressionError(
            f"{node.key!r} is not allowed in a mapping expression (one scalar expression "
            "over the source row: see docs/source-mapping.md)"
        )


def _not_allowed(name: str) -> str:
    return (
        f"{name}() is not allowed: not a scalar function of the allow-list "
        "(a mapping expression reads the source row only; see docs/source-mapping.md)"
    )


def _written_name(node: exp.Func, text: str) -> str:
    """The function's name as the mapping spells it (sqlglot knows several spellings)."""
    for name in node.sql_names():
        if re.search(rf"\b{re.escape(name)}\s*\(", text, re.IGNORECASE):
            return name.lower()
    return node.sql_names()[0].lower()


def _duckdb_columns(con: duckdb.DuckDBPyConnection, expression: str) -> tuple[str, ...]:
    """DuckDB's parse of the same text (no binding, no execution): same shape, allowed
    functions only; returns the columns it refers to."""
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
    _walk(node["select_list"][0], found)
    return tuple(dict.fromkeys(found))


def _walk(node: Any, found: list[str]) -> None:
    """Collect COLUMN_REF names, refusing forbidden node classes and functions not allowed."""
    if isinstance(node, list):
        for item in node:
            _walk(item, found)
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
        found.append(names[0])
        return
    if kind == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        if node.get("schema") or node.get("catalog") or name not in ALLOWED_DUCKDB_FUNCTIONS:
            raise ExpressionError(_not_allowed(name))
    for key, value in node.items():
        if key in ("class", "type", "alias"):
            continue
        _walk(value, found)
