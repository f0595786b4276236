"""The auditor's definitions page, generated from the files the pipeline computes with.

Every rule, threshold, version and change on the page is read from the dbt project: the seeds
in `seeds/definitions/`, the `vars:` of `dbt_project.yml` (with their comments) and the model
documentation of the rule-bearing models. Nothing is copied by hand, so the page cannot drift
from what the numbers were computed with. The run's effective settings, when given, are shown
next to the defaults with the differences marked (such a run is a `+custom` variant).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pipelines.reporting.html import esc, page, write_atomically
from pipelines.reporting.i18n import check_language, tr

SEEDS_DIR = Path("seeds") / "definitions"
KNOWN_SEEDS = (
    "definitions_changelog", "kpi_definitions", "kpi_scopes", "intent_event_types",
    "free_mail_domains",
    "sales_roles", "lifecycle_label_stages",
)
# Vars that say where "now" is or are set by the pipeline, not thresholds of the definitions.
NOT_THRESHOLDS = {"as_of", "definitions_custom"}
# Models whose documentation states the rules: the intermediate layer applies the definitions;
# these marts add the label check and the KPI series, baselines and targets.
RULE_MARTS = ("label_consistency", "kpi_values", "kpi_baselines", "kpi_scorecard")


def write_definitions_page(
    dbt_project_dir: Path,
    out_path: Path,
    effective_settings: dict | None = None,
    language: str = "en",
) -> Path:
    """Write the definitions page for the dbt project at `dbt_project_dir` to `out_path`."""
    language = check_language(language)
    project = Path(dbt_project_dir)
    document = _render(project, effective_settings, language)
    return write_atomically(Path(out_path), document)


def _read_seed(project: Path, name: str) -> list[dict[str, str]]:
    path = project / SEEDS_DIR / f"{name}.csv"
    if not path.exists():
        return []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


def _vars(project: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The vars with their defaults, and the comment written after each in the YAML."""
    text = (project / "dbt_project.yml").read_text(encoding="utf-8")
    values = (yaml.safe_load(text) or {}).get("vars") or {}
    comments: dict[str, str] = {}
    in_vars = False
    for line in text.splitlines():
        if re.match(r"^vars:\s*(#.*)?$", line):
            in_vars = True
            continue
        if in_vars and line and not line[0].isspace() and not line.startswith("#"):
            break
        match = re.match(r"^\s+([A-Za-z_][\w]*):[^#]*#\s*(.+)$", line) if in_vars else None
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return dict(values), comments


def _model_docs(project: Path) -> list[tuple[str, str, str]]:
    """(model, description, yml file) of the rule-bearing models, in file order."""
    docs = []
    for path in sorted((project / "models").rglob("*.yml")):
        relative = path.relative_to(project).as_posix()
        rules_layer = relative.startswith("models/intermediate/")
        if "/unit_tests/" in relative:
            continue
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for model in content.get("models") or []:
            name = str(model.get("name", ""))
            description = str(model.get("description") or "").strip()
            if description and (rules_layer or name in RULE_MARTS):
                docs.append((name, description, relative))
    return docs


def _seed_descriptions(project: Path) -> dict[str, str]:
    descriptions: dict[str, str] = {}
    for path in sorted((project / "seeds").rglob("*.yml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for seed in content.get("seeds") or []:
            descriptions[str(seed.get("name"))] = str(seed.get("description") or "").strip()
    return descriptions


def _latest(changelog: list[dict[str, str]]) -> dict[str, str] | None:
    """The current version: latest valid_from, then highest version (as the dbt macro)."""
    if not changelog:
        return None
    return max(changelog, key=lambda r: (r.get("valid_from", ""), r.get("version", "")))


def _same(default: Any, effective: Any) -> bool:
    """Whether an effective setting equals its default (0.1 == 0.10, null == '' == None)."""
    def norm(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null")):
            return None
        if isinstance(value, bool):
            return value
        try:
            return float(value)
        except (TypeError, ValueError):
            return str(value)

    a, b = norm(default), norm(effective)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


def _shown(value: Any, language: str) -> str:
    if value is None:
        return tr("unset", language)
    if isinstance(value, bool):
        return tr("yes" if value else "no", language)
    return str(value)


def _table(headers: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    """A table of already-escaped cells."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join(
        f'<tr class="{classes[n] if classes else ""}">' + "".join(f"<td>{c}</td>" for c in row)
        + "</tr>"
        for n, row in enumerate(rows)
    )
    return (f'<div class="table-wrap"><table class="data"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _source(path: str, language: str) -> str:
    return f'<p class="help">{esc(tr("def_source", language))}: <code>{esc(path)}</code></p>'


def _section(anchor: str, title: str, intro: str, content: str, source: str) -> str:
    intro_html = f'<p class="help">{esc(intro)}</p>' if intro else ""
    return (f'<section class="card" id="{anchor}"><h2>{esc(title)}</h2>{intro_html}{content}'
            f"{source}</section>")


def _render(project: Path, effective: Mapping[str, Any] | None, language: str) -> str:
    def t(key: str, **values: object) -> str:
        return tr(key, language, **values)

    def seed_path(name: str) -> str:
        return (SEEDS_DIR / f"{name}.csv").as_posix()

    seeds = {name: _read_seed(project, name) for name in KNOWN_SEEDS}
    seed_docs = _seed_descriptions(project)
    defaults, comments = _vars(project)
    changelog = seeds["definitions_changelog"]
    latest = _latest(changelog)
    version = latest["version"] if latest else "–"
    sections: list[str] = []

    # Version and change history
    rows = [
        [f"<b>{esc(r.get('version'))}</b>", esc(r.get("valid_from")), esc(r.get("change"))]
        for r in sorted(changelog, key=lambda r: (r.get("valid_from", ""), r.get("version", "")),
                        reverse=True)
    ]
    sections.append(_section(
        "changelog", t("def_changelog"), seed_docs.get("definitions_changelog", ""),
        _table([t("def_version"), t("def_valid_from"), t("def_change")], rows),
        _source(seed_path("definitions_changelog"), language)))

    # Thresholds
    threshold_rows, classes, custom = [], [], []
    names = list(defaults) + [k for k in (effective or {}) if k not in defaults]
    for name in names:
        default = defaults.get(name)
        cells = [f"<code>{esc(name)}</code>",
                 esc(_shown(default, language)) if name in defaults else "–"]
        differs = False
        if effective is not None:
            if name in effective:
                value = effective[name]
                differs = name in defaults and not _same(default, value)
                cells.append(esc(_shown(value, language)) + (
                    f' <span class="badge warn">{esc(t("def_differs"))}</span>' if differs else ""))
            else:
                cells.append("–")
        cells.append(esc(comments.get(name, "")))
        threshold_rows.append(cells)
        classes.append("differs" if differs else "")
        if differs and name not in NOT_THRESHOLDS:
            custom.append(name)
    headers = [t("def_name"), t("def_default")]
    if effective is not None:
        headers.append(t("def_effective"))
    headers.append(t("description"))
    custom_note = t("def_custom_note", n=len(custom), version=version)
    note = f'<p><span class="badge warn">{esc(custom_note)}</span></p>' if custom else ""
    sections.append(_section(
        "thresholds", t("def_thresholds"), t("def_thresholds_help"),
        note + _table(headers, threshold_rows, classes),
        _source("dbt_project.yml (vars)", language)))

    # KPIs (the registry: one row per KPI, its scopes one row each in kpi_scopes)
    scopes: dict[str, list[str]] = {}
    for row in seeds["kpi_scopes"]:
        scopes.setdefault(row.get("kpi_id", ""), []).append(row.get("scope", ""))
    kpis = sorted(seeds["kpi_definitions"],
                  key=lambda r: (int(r.get("display_order") or 0), r.get("kpi_id", "")))
    kpi_rows = [
        [f"<b>{esc(r.get(f'name_{language}') or r.get('name_en'))}</b><br>"
         f"<code>{esc(r.get('kpi_id'))}</code>",
         esc(r.get("kpi_kind")), esc(r.get("grain")),
         esc(", ".join(scopes.get(r.get("kpi_id", ""), []))), esc(r.get("unit")),
         esc(r.get("definition")), esc(r.get("owner")),
         esc(t("yes") if str(r.get("is_active", "")).lower() == "true" else t("no"))]
        for r in kpis
    ]
    sections.append(_section(
        "kpis", t("def_kpis"), seed_docs.get("kpi_definitions", ""),
        _table([t("def_name"), t("def_kind"), t("def_grain"), t("def_scopes"), t("def_unit"),
                t("def_definition"), t("def_owner"), t("def_active")], kpi_rows),
        _source(seed_path("kpi_definitions"), language)))

    # Intent events
    intent_rows = [
        [f"<code>{esc(r.get('event_type'))}</code>",
         '<span class="badge ok">' + esc(t("yes")) + "</span>"
         if str(r.get("is_intent", "")).lower() == "true"
         else '<span class="badge neutral">' + esc(t("no")) + "</span>",
         esc(r.get("why"))]
        for r in seeds["intent_event_types"]
    ]
    sections.append(_section(
        "intent", t("def_intent"), seed_docs.get("intent_event_types", ""),
        _table([t("def_event_type"), t("def_is_intent"), t("def_why")], intent_rows),
        _source(seed_path("intent_event_types"), language)))

    # Free-mail domains
    domains = "".join(f"<li><code>{esc(r.get('domain'))}</code></li>"
                      for r in seeds["free_mail_domains"])
    sections.append(_section(
        "free-mail", t("def_free_mail"), seed_docs.get("free_mail_domains", ""),
        f'<ul class="cols">{domains}</ul>', _source(seed_path("free_mail_domains"), language)))

    # Sales roles
    role_rows = [
        [f"<code>{esc(r.get('role'))}</code>",
         esc(t("yes") if str(r.get("is_sales_rep", "")).lower() == "true" else t("no")),
         esc(r.get("description"))]
        for r in seeds["sales_roles"]
    ]
    sections.append(_section(
        "roles", t("def_roles"), seed_docs.get("sales_roles", ""),
        _table([t("def_role"), t("def_is_sales_rep"), t("description")], role_rows),
        _source(seed_path("sales_roles"), language)))

    # CRM labels
    stages: dict[str, list[str]] = {}
    for r in seeds["lifecycle_label_stages"]:
        stages.setdefault(str(r.get("crm_label")), []).append(str(r.get("agreed_stage")))
    label_rows = [[f"<code>{esc(label)}</code>", ", ".join(f"<code>{esc(s)}</code>" for s in ss)]
                  for label, ss in stages.items()]
    sections.append(_section(
        "labels", t("def_labels"), seed_docs.get("lifecycle_label_stages", ""),
        _table([t("def_crm_label"), t("def_agreed_stages")], label_rows),
        _source(seed_path("lifecycle_label_stages"), language)))

    # Any further definitions seed appears too, as a plain table.
    for path in sorted((project / SEEDS_DIR).glob("*.csv")):
        if path.stem in KNOWN_SEEDS:
            continue
        rows_raw = _read_seed(project, path.stem)
        columns = list(rows_raw[0]) if rows_raw else []
        sections.append(_section(
            f"seed-{path.stem}", path.stem, seed_docs.get(path.stem, ""),
            _table([esc(c) for c in columns], [[esc(r.get(c)) for c in columns]
                                               for r in rows_raw]),
            _source((SEEDS_DIR / path.name).as_posix(), language)))

    # Rules as implemented
    rules = "".join(
        f'<h3 id="rule-{esc(name)}"><code>{esc(name)}</code></h3>'
        f'<p style="max-width:980px">{esc(description)}</p>'
        f'<p class="help">{esc(t("def_source"))}: <code>{esc(source)}</code></p>'
        for name, description, source in _model_docs(project)
    )
    sections.append(_section("rules", t("def_rules"), t("def_rules_help"), rules, ""))

    valid_from = latest.get("valid_from", "") if latest else ""
    header = (
        '<header class="top"><div class="wrap"><div class="head-row"><div>'
        f'<h1>{esc(t("def_title"))}</h1><p class="sub">{esc(t("def_subtitle"))}</p></div>'
        f'<span class="pill {"warn" if custom else "ok"}" id="version">'
        f'{esc(t("def_version"))} {esc(version)}{" +custom" if custom else ""}</span></div>'
        f'<div class="head-row"><div class="meta"><span class="chip">{esc(t("def_valid_from"))}: '
        f"<b>{esc(valid_from)}</b></span></div></div></div></header>"
    )
    nav = "".join(
        f'<a class="tab" href="#{anchor}">{esc(t(key))}</a>'
        for anchor, key in (("changelog", "def_changelog"), ("thresholds", "def_thresholds"),
                            ("kpis", "def_kpis"), ("intent", "def_intent"),
                            ("free-mail", "def_free_mail"), ("roles", "def_roles"),
                            ("labels", "def_labels"), ("rules", "def_rules"))
    )
    body = (header + f'<nav class="tabs"><div class="wrap">{nav}</div></nav>'
            + f'<main class="wrap">{"".join(sections)}</main>')
    return page(f'{t("def_title")} {version}', language, body)
