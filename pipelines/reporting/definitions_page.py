"""The auditor's definitions page, generated from the files the pipeline computes with.

Every rule, threshold, version and change on the page is read from the dbt project: the seeds
in `seeds/definitions/`, the `vars:` of `dbt_project.yml` (with their comments) and the model
documentation of the rule-bearing models; the checks that gate publishing, and whether each
stops it or warns, from their one home, `pipelines/quality/checks.py`. Nothing is copied by
hand, so the page cannot drift from what the numbers were computed with. The run's effective
settings, when given, are shown next to the defaults with the differences marked (such a run
is a `+custom` variant).
"""

from __future__ import annotations

import csv
import functools
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pipelines.files import write_atomically
from pipelines.quality.checks import CHECKS
from pipelines.reporting.html import content_policy, environment, inline_style
from pipelines.reporting.i18n import TEXT, check_language, tr
from pipelines.settings import LOAD_SETTINGS, Settings

SEEDS_DIR = Path("seeds") / "definitions"
KNOWN_SEEDS = (
    "definitions_changelog", "kpi_definitions", "kpi_scopes", "intent_event_types",
    "free_mail_domains", "sales_roles", "lifecycle_label_stages",
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
    context = _context(project, effective_settings, language)
    document = environment().get_template("definitions.html").render(**context)
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


def _yaml(path: Path) -> Any:
    """A YAML file of the dbt project, parsed once per version of it (each language's page
    reads the same files) with libyaml where PyYAML has it (the pure-Python parser took
    about half a second per page for the models' YAML)."""
    stat = path.stat()
    return _parsed_yaml(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _parsed_yaml(path: Path, _mtime_ns: int, _size: int) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # a safe loader


def _model_docs(project: Path) -> list[tuple[str, str, str]]:
    """(model, description, yml file) of the rule-bearing models, in file order."""
    docs = []
    for path in sorted((project / "models").rglob("*.yml")):
        relative = path.relative_to(project).as_posix()
        rules_layer = relative.startswith("models/intermediate/")
        if "/unit_tests/" in relative:
            continue
        content = _yaml(path) or {}
        for model in content.get("models") or []:
            name = str(model.get("name", ""))
            description = str(model.get("description") or "").strip()
            if description and (rules_layer or name in RULE_MARTS):
                docs.append((name, description, relative))
    return docs


def _dbt_tests(project: Path) -> list[dict[str, Any]]:
    """The dbt build's singular tests (`tests/*.sql`), as the checks section shows them: a
    failing one stops the run before the checks, unless its config makes it a warning; what
    it holds is its leading comment."""
    tests = []
    for path in sorted((project / "tests").glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        comment = " ".join(line.removeprefix("--").strip() for line in text.splitlines()
                           if line.startswith("--"))
        warns = re.search(r"severity\s*=\s*['\"]warn['\"]", text) is not None
        tests.append({"name": path.stem, "guards": "dbt build", "blocking": not warns,
                      "description": comment,
                      "query": path.relative_to(project.parent).as_posix()})
    return tests


def _seed_descriptions(project: Path) -> dict[str, str]:
    descriptions: dict[str, str] = {}
    for path in sorted((project / "seeds").rglob("*.yml")):
        content = _yaml(path) or {}
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


def _word(prefix: str, value: str, language: str) -> str:
    """A registry value (kind, grain, scope, unit) in the page language."""
    key = f"{prefix}_{value}"
    return tr(key, language) if value and key in TEXT else value


def _context(project: Path, effective: Mapping[str, Any] | None, language: str) -> dict[str, Any]:
    """Everything the definitions template shows, read from the project's files."""

    def t(key: str, **values: object) -> str:
        return tr(key, language, **values)

    def seed_path(name: str) -> str:
        return (SEEDS_DIR / f"{name}.csv").as_posix()

    seeds = {name: _read_seed(project, name) for name in KNOWN_SEEDS}
    seed_docs = _seed_descriptions(project)
    defaults, comments = _vars(project)
    # the loader's thresholds: defaults and meaning from the settings, their home
    loader_defaults = {name: getattr(Settings, name) for name in LOAD_SETTINGS}
    changelog = seeds["definitions_changelog"]
    latest = _latest(changelog)
    version = latest["version"] if latest else "–"

    thresholds, custom = [], []
    known = {**defaults, **loader_defaults}
    for name in list(known) + [k for k in (effective or {}) if k not in known]:
        row = {"name": name, "default": _shown(known.get(name), language)
               if name in known else "–", "effective": None, "differs": False,
               "comment": comments.get(name) or LOAD_SETTINGS.get(name, "")}
        if effective is not None:
            row["effective"] = _shown(effective[name], language) if name in effective else "–"
            row["differs"] = (name in effective and name in known
                              and not _same(known.get(name), effective[name]))
        thresholds.append(row)
        if row["differs"] and name not in NOT_THRESHOLDS and name in defaults:
            custom.append(name)

    scopes: dict[str, list[str]] = {}
    for row in seeds["kpi_scopes"]:
        scopes.setdefault(str(row.get("kpi_id")), []).append(str(row.get("scope")))
    kpis = [
        {"name": r.get(f"name_{language}") or r.get("name_en"), "id": r.get("kpi_id"),
         "kind": _word("kind", str(r.get("kpi_kind", "")), language),
         "grain": _word("grain", str(r.get("grain", "")), language),
         "scopes": ", ".join(_word("scope", s, language) for s in scopes.get(
             str(r.get("kpi_id")), str(r.get("scopes") or "").split(",")) if s),
         "unit": _word("unit", str(r.get("unit", "")), language),
         "definition": r.get("definition"), "owner": r.get("owner"),
         "active": t("yes") if str(r.get("is_active", "")).lower() == "true" else t("no")}
        for r in seeds["kpi_definitions"]
    ]
    labels: dict[str, list[str]] = {}
    for r in seeds["lifecycle_label_stages"]:
        labels.setdefault(str(r.get("crm_label")), []).append(str(r.get("agreed_stage")))
    extra = []
    for path in sorted((project / SEEDS_DIR).glob("*.csv")):
        if path.stem in KNOWN_SEEDS:
            continue
        rows = _read_seed(project, path.stem)
        extra.append({"name": path.stem, "doc": seed_docs.get(path.stem, ""),
                      "columns": list(rows[0]) if rows else [], "rows": rows,
                      "source": (SEEDS_DIR / path.name).as_posix()})
    nav = [(anchor, t(key)) for anchor, key in (
        ("changelog", "def_changelog"), ("thresholds", "def_thresholds"), ("kpis", "def_kpis"),
        ("intent", "def_intent"), ("free-mail", "def_free_mail"), ("roles", "def_roles"),
        ("labels", "def_labels"), ("checks", "def_checks"), ("rules", "def_rules"))]
    css, style_source = inline_style("report.css")
    return {
        "lang": language,
        "t": t,
        "css": css,
        "content_policy": content_policy(style_source),
        "version": version,
        "custom": custom,
        "valid_from": latest.get("valid_from", "") if latest else "",
        "nav": nav,
        "seed_docs": seed_docs,
        "seed_path": seed_path,
        "changelog": sorted(changelog, key=lambda r: (r.get("valid_from", ""),
                                                      r.get("version", "")), reverse=True),
        "thresholds": thresholds,
        "has_effective": effective is not None,
        "kpis": kpis,
        "intent": [{"event_type": r.get("event_type"),
                    "is_intent": str(r.get("is_intent", "")).lower() == "true",
                    "why": r.get("why")} for r in seeds["intent_event_types"]],
        "domains": [r.get("domain") for r in seeds["free_mail_domains"]],
        "roles": [{"role": r.get("role"),
                   "is_sales_rep": t("yes") if str(r.get("is_sales_rep", "")).lower() == "true"
                   else t("no"), "description": r.get("description")}
                  for r in seeds["sales_roles"]],
        "labels": labels,
        "extra_seeds": extra,
        "rules": _model_docs(project),
        "checks": [*_dbt_tests(project),
                   *({"name": check.name, "guards": check.asset, "blocking": check.blocking,
                      "description": check.description,
                      "query": f"expectations/queries/{check.query}.sql"} for check in CHECKS)],
        "english_note": t("def_in_english"),
    }
