"""Shared pieces of the reports: the Jinja2 environment, the static files and atomic writes.

Markup lives in `templates/`, style and behaviour in `static/`; Python only gathers data.
The environment autoescapes every value, and JSON handed to a page goes through
`script_json`, so nothing from the data reaches HTML unescaped.
"""

from __future__ import annotations

import os
import tempfile
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


def write_atomically(path: Path, text: str) -> Path:
    """Write `text` next to `path` and rename it into place, so a reader (a browser, a web
    server) never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
