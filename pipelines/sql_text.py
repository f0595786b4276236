"""SQL text the code writes itself: quoted names and string literals (DuckDB's and Spark
SQL's quoting alike). Values that vary go in as parameters where the statement takes them;
these are for what cannot be a parameter (DDL, COPY targets, comments, a view's files)."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A name (table, column) in double quotes, inner quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    """A string literal in single quotes, inner quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def comment_literal(text: object) -> str:
    """A description as one SQL string literal on one line: a comment on a published table,
    view or column (the dbt YAML's folded text, its line breaks and indents collapsed)."""
    return sql_literal(" ".join(str(text).split()))
