"""Shared pieces of the reports: the Jinja2 environment, the static files and the pages'
content security policy.

Markup lives in `templates/`, style and behaviour in `static/`; Python only gathers data.
The environment autoescapes every value, and JSON handed to a page goes through
`script_json`, so nothing from the data reaches HTML unescaped. Each page also carries a
content security policy (a `<meta>`; the pages are files, opened from disk or served as
they are): were something to slip past the escaping, the browser would still run no inline
script or handler, load nothing from elsewhere and send nothing anywhere.
"""

from __future__ import annotations

import base64
import hashlib
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


# What every page refuses: anything not allowed below (`default-src 'none'`: no script,
# frame, fetch or plugin), a `<base>` that would move its relative links, and form targets.
_POLICY_FLOOR = ("default-src 'none'", "base-uri 'none'", "form-action 'none'")


def content_policy(*allowed: str) -> str:
    """A page's content security policy: the floor above and the sources it needs."""
    return "; ".join((*_POLICY_FLOOR, *allowed))


# The dashboard: its scripts and styles from the site's own files ('self', which Chromium
# and Firefox match for a page opened from disk as well), Plotly's images as data and blob
# URLs; inline styles too, since Plotly writes its own <style> elements and style attributes
# (a style runs nothing; inline scripts and handlers stay refused).
DASHBOARD_POLICY = content_policy(
    "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
    "font-src 'self' data:",
)
# The index's redirect: nothing at all (a refresh is a navigation, which no policy governs).
REDIRECT_POLICY = content_policy()


def inline_style(name: str) -> tuple[Markup, str]:
    """A stylesheet of `static/` for a `<style>` element, and the policy source that lets
    exactly it apply (its SHA-256), for a page that must stand alone. The text is the
    project's own and goes in as it is: a `<style>` element's content is raw text, where an
    escaped quote would be a stray `&#34;` that breaks the rule around it."""
    text = static_text(name)
    if "</" in text:
        raise ValueError(f"static/{name} holds '</', which would end its <style> element")
    return Markup(text), f"style-src {hash_source(text)}"


def hash_source(text: str) -> str:
    """The policy source that allows exactly this inline script or style: `'sha256-…'` of
    the element's text as the browser reads it."""
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"

