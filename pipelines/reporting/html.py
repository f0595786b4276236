"""Shared HTML pieces of the reports: the stylesheet, the page frame and the atomic write.

Everything is inline (no CDN, no web fonts) so the files open from disk and work offline.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

CSS = """
:root {
  --ink: #1f2a37; --muted: #6b7785; --line: #e3e8ee; --bg: #f3f5f8; --navy: #1f3a5f;
  --met: #2e9e6a; --met-bg: #e4f4ec; --below: #d25a32; --below-bg: #fcebe4;
  --prog: #46679a; --prog-bg: #eaf0f8; --none: #5f6f82; --none-bg: #f1f3f6;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 Inter, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
a { color: #2f6fb0; }
.wrap { max-width: 1320px; margin: 0 auto; padding: 0 24px; }
header.top { background: linear-gradient(120deg, #14263d, #1f3a5f 60%, #2b5283); color: #fff;
  padding: 22px 0 18px; }
header.top .head-row { display: flex; flex-wrap: wrap; gap: 12px 32px;
  align-items: center; justify-content: space-between; }
header.top h1 { margin: 0; font-size: 26px; font-weight: 650; letter-spacing: -0.01em; }
header.top p.sub { margin: 4px 0 0; color: #c9d6e8; }
.meta { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 12px; }
.chip { background: rgba(255,255,255,0.12); border: 1px solid rgba(255,255,255,0.18);
  border-radius: 999px; padding: 3px 11px; font-size: 12.5px; color: #eef3fa; }
.chip b { font-weight: 600; color: #fff; }
.pill { border-radius: 999px; padding: 6px 14px; font-weight: 600; font-size: 13px;
  text-decoration: none; }
.pill.ok { background: #d8f1e4; color: #17603f; }
.pill.warn { background: #fff0d1; color: #8a5a00; }
.pill.fail { background: #fbd9cc; color: #9a3210; }
.pill.unknown { background: rgba(255,255,255,0.15); color: #eef3fa; }
.head-links { font-size: 13px; color: #c9d6e8; margin-top: 12px; }
.head-links a { color: #fff; margin-left: 12px; }
nav.tabs { position: sticky; top: 0; z-index: 10; background: #fff;
  border-bottom: 1px solid var(--line); box-shadow: 0 1px 3px rgba(20,38,61,0.05); }
nav.tabs .wrap { display: flex; gap: 4px; align-items: center; overflow-x: auto; }
nav.tabs .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .06em; margin-right: 8px; }
.tab { border: 0; background: none; font: inherit; font-weight: 550; color: var(--muted);
  padding: 13px 14px 11px; border-bottom: 3px solid transparent; cursor: pointer; }
.tab:hover { color: var(--ink); }
a.tab { text-decoration: none; display: inline-block; white-space: nowrap; }
.tab[aria-selected="true"] { color: var(--navy); border-bottom-color: var(--navy); }
main { padding: 22px 0 8px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 12px;
  padding: 20px 22px; margin-bottom: 20px; box-shadow: 0 1px 2px rgba(20,38,61,0.04); }
h2 { font-size: 18px; margin: 0 0 4px; font-weight: 650; }
h3 { font-size: 15px; margin: 18px 0 6px; font-weight: 620; }
h2 .kind { font-size: 11px; text-transform: uppercase; letter-spacing: .07em;
  color: var(--muted); font-weight: 600; margin-left: 8px; vertical-align: 2px; }
p.help { color: var(--muted); margin: 0 0 12px; font-size: 13px; max-width: 980px; }
.section-title { display: flex; align-items: baseline; gap: 12px; margin: 6px 0 12px; }
.section-title h2 { margin: 0; }
.section-title .period { color: var(--muted); }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr));
  gap: 14px; margin-bottom: 20px; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 12px;
  padding: 14px 16px 12px; border-top: 4px solid var(--none); }
.tile.st-met { border-top-color: var(--met); }
.tile.st-below { border-top-color: var(--below); }
.tile.st-in_progress { border-top-color: #7f9ccc; }
.tile.insight { border-top-color: #8e5bb5; }
.tile .name { font-size: 13px; color: var(--muted); font-weight: 600; }
.tile .value { font-size: 27px; font-weight: 680; margin: 4px 0 2px; letter-spacing: -0.01em; }
.tile .sub { font-size: 12.5px; color: var(--muted); }
.tile .bar { height: 7px; border-radius: 4px; background: #edf0f4; margin: 10px 0 6px;
  overflow: hidden; }
.tile .bar span { display: block; height: 100%; border-radius: 4px; background: #7f9ccc; }
.tile.st-met .bar span { background: var(--met); }
.tile.st-below .bar span { background: var(--below); }
.tile .foot { display: flex; justify-content: space-between; align-items: center;
  font-size: 12.5px; }
.tile .att { font-weight: 650; }
.badge { display: inline-block; border-radius: 999px; padding: 1px 9px; font-size: 11.5px;
  font-weight: 600; white-space: nowrap; }
.st-met .badge, .badge.st-met { background: var(--met-bg); color: var(--met); }
.st-below .badge, .badge.st-below { background: var(--below-bg); color: var(--below); }
.st-in_progress .badge, .badge.st-in_progress { background: var(--prog-bg); color: var(--prog); }
.badge.st-none { background: var(--none-bg); color: var(--none); }
.badge.ok { background: var(--met-bg); color: var(--met); }
.badge.fail { background: var(--below-bg); color: var(--below); }
.badge.warn { background: #fff0d1; color: #8a5a00; }
.badge.neutral { background: var(--none-bg); color: var(--none); }
.grid-2 { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 3fr); gap: 20px; }
.grid-even { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 20px; }
@media (max-width: 1000px) { .grid-2, .grid-even { grid-template-columns: 1fr; } }
.table-wrap { overflow-x: auto; }
table.data { width: 100%; border-collapse: separate; border-spacing: 0; font-size: 13px; }
table.data th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px;
  padding: 7px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
table.data th.group { text-align: center; color: var(--ink); font-size: 12.5px;
  border-bottom: 2px solid var(--line); }
table.data td { padding: 7px 10px; border-bottom: 1px solid #f0f2f5; vertical-align: middle; }
table.data tr.total td { font-weight: 600; }
table.data tr.total td:first-child { background: #fafbfc; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.data td.cell { text-align: center; font-variant-numeric: tabular-nums;
  border-left: 3px solid #fff; white-space: nowrap; }
td.cell.st-met { background: var(--met-bg); }
td.cell.st-below { background: var(--below-bg); }
td.cell.st-in_progress { background: var(--prog-bg); }
td.cell.st-none { background: var(--none-bg); color: var(--muted); }
td.cell b { font-size: 14px; }
td.cell .tgt { color: var(--muted); font-size: 12px; }
td.cell .att { display: block; font-size: 11.5px; font-weight: 600; }
td.cell.st-met .att { color: var(--met); }
td.cell.st-below .att { color: var(--below); }
td.cell.st-in_progress .att { color: var(--prog); }
.who small { color: var(--muted); margin-left: 6px; }
.legend-row { display: flex; gap: 14px; flex-wrap: wrap; font-size: 12px; color: var(--muted);
  margin: 8px 0 0; }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px;
  margin: 6px 0 14px; }
.stat { background: #f8f9fb; border: 1px solid var(--line); border-radius: 10px;
  padding: 10px 12px; }
.stat .name { font-size: 12px; color: var(--muted); }
.stat .value { font-size: 20px; font-weight: 680; }
.stat .sub { font-size: 11.5px; color: var(--muted); }
.links { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 12px; }
.links a { display: block; border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 14px; text-decoration: none; color: var(--ink); background: #f8f9fb; }
.links a:hover { border-color: #9fb3cc; background: #fff; }
.links a span { display: block; color: var(--muted); font-size: 12px; word-break: break-all; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; }
td.mono { white-space: nowrap; }
footer { color: var(--muted); font-size: 12px; padding: 8px 0 28px; }
.empty { color: var(--muted); font-style: italic; }
ul.cols { columns: 4 180px; margin: 6px 0 0; padding-left: 18px; }
.differs { background: #fff0d1; }
"""


def esc(value: object) -> str:
    """Text for HTML: every value from the data passes through here."""
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, language: str, body: str, head_extra: str = "") -> str:
    """A complete, self-contained HTML document."""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{esc(language)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n{head_extra}</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


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
