"""Shared pieces of the reports: the Jinja2 environment and the static files.

Markup lives in `templates/`, style and behaviour in `static/`; Python only gathers data.
The environment autoescapes every value, and JSON handed to a page goes through
`script_json`, so nothing from the data reaches HTML unescaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from pipelines.reporting.site_data import script_json

STATIC_DIR = Path(__file__).resolve().parent / "static"


def _script_json_filter(value: Any) -> Markup:
    """`{{ value|script_json }}`: JSON safe inside `<script type="application/json">`."""
    return Markup(script_json(value))


def environment() -> Environment:
    """The reports' Jinja2 environment: autoescaping on, unknown names are errors."""
    env = Environment(
        loader=PackageLoader("pipelines.reporting", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["script_json"] = _script_json_filter
    return env


def static_text(name: str) -> str:
    """A file of `static/` (for pages that must stand alone, e.g. the definitions page)."""
    return (STATIC_DIR / name).read_text(encoding="utf-8")
