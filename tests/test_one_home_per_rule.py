"""One home per rule: a KPI is declared only in the registry seeds, a threshold's default only
in dbt_project.yml's vars, and Python reads meaning instead of restating it.

These tests read the project's own files: each fails when a second home appears.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import yaml

from pipelines.dbt_project import dbt_vars
from pipelines.settings import DEFINITION_SETTINGS, PROJECT_ROOT, Settings

DBT = PROJECT_ROOT / "dbt_project"
SEEDS = DBT / "seeds" / "definitions"
PACKAGE = PROJECT_ROOT / "pipelines"
# The sample generator invents CRM data (it is no reader of the marts), and the contract lists
# the extract's allowed values; neither states a definition.
NOT_READERS = (PACKAGE / "sample", PACKAGE / "contract.py")


def _vars() -> dict[str, object]:
    return yaml.safe_load((DBT / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]


def _seed(name: str) -> list[dict[str, str]]:
    with (SEEDS / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _python_files() -> list[Path]:
    return [
        path for path in PACKAGE.rglob("*.py")
        if not any(path == skip or skip in path.parents for skip in NOT_READERS)
    ]


def _files(*patterns: str) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        found += [p for p in PROJECT_ROOT.glob(pattern) if "target" not in p.parts]
    return found


def test_threshold_defaults_live_in_dbt_project_vars_and_settings_derive_from_them() -> None:
    variables = _vars()
    defaults = Settings()
    assert set(DEFINITION_SETTINGS) == set(variables) - {"as_of", "definitions_custom"}
    for name in DEFINITION_SETTINGS:
        value = getattr(defaults, name)
        assert (value.isoformat() if hasattr(value, "isoformat") else value) == variables[name]
    assert dbt_vars(defaults) == {**variables, "definitions_custom": False}


def _unit_test_scenario(path: Path, line: str, defaults: dict[str, object]) -> bool:
    """A dbt unit test's override of a setting with another value than its default (e.g. the
    business timezone of a DST case): a scenario, not a second statement of the default."""
    if "unit_tests" not in path.parts or path.suffix != ".yml":
        return False
    stated = re.match(r"\s*(\w+)\s*:\s*(\S.*)$", line)
    if not stated or stated[1] not in defaults:
        return False
    value, default = yaml.safe_load(stated[2]), defaults[stated[1]]
    try:  # dbt pastes a var into SQL as text: "20", 20.0 and 2e1 all state the default 20
        return float(value) != float(default)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value) != str(default)


def test_no_other_file_states_a_threshold_default() -> None:
    names = "|".join(DEFINITION_SETTINGS)
    defaults = _vars()
    in_python = re.compile(
        rf"\b({names})\b\s*(?::\s*[\w |]+)?\s*=\s*(?:-?\d|['\"]|None\b)"
        rf"|\.get\(\s*['\"]({names})['\"]\s*,"
    )
    in_dbt = re.compile(rf"\b({names})\b\s*[:=]\s*\S|var\(\s*['\"]({names})['\"]\s*,")
    offenders = []
    for path in [*_python_files(), *_files("dbt_project/models/**/*.sql",
                                           "dbt_project/models/**/*.yml",
                                           "dbt_project/macros/**/*.sql",
                                           "dbt_project/tests/**/*.sql",
                                           "expectations/queries/*.sql")]:
        pattern = in_python if path.suffix == ".py" else in_dbt
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0] if path.suffix == ".py" else line
            if (pattern.search(code) and "DEFINITION_DEFAULTS[" not in code
                    and not _unit_test_scenario(path, line, defaults)):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)


def test_a_unit_test_may_set_a_setting_to_another_value_but_not_restate_its_default() -> None:
    defaults = _vars()
    unit_test = DBT / "models" / "marts" / "unit_tests" / "example.yml"
    restated = ['min_labels_judged: "20"', "min_labels_judged: 20.0",
                "max_label_disagreement: '0.05'", "max_label_disagreement: 5e-2",
                "business_timezone: Europe/Amsterdam"]
    scenarios = ["min_labels_judged: 10", "business_timezone: America/Havana"]
    assert [line for line in restated
            if _unit_test_scenario(unit_test, f"        {line}", defaults)] == []
    assert all(_unit_test_scenario(unit_test, f"        {line}", defaults) for line in scenarios)
    # outside a unit test, any value is a second home
    model_docs = DBT / "models" / "marts" / "_marts.yml"
    assert not _unit_test_scenario(model_docs, "        min_labels_judged: 10", defaults)


def test_no_kpi_id_is_named_outside_the_registry() -> None:
    ids = [row["kpi_id"] for row in _seed("kpi_definitions")]
    named = re.compile(r"\b(" + "|".join(map(re.escape, ids)) + r")\b")
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
        for path in [*_python_files(), *_files("dbt_project/models/**/*.sql",
                                               "expectations/queries/*.sql")]
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if named.search(line.split("--")[0] if path.suffix == ".sql" else line.split("#")[0])
    ]
    assert offenders == [], "\n".join(offenders)


def test_the_registry_declares_every_kpi_once_with_one_row_per_scope() -> None:
    definitions = _seed("kpi_definitions")
    scopes = _seed("kpi_scopes")
    assert "scopes" not in definitions[0]
    ids = [row["kpi_id"] for row in definitions]
    assert len(ids) == len(set(ids))
    assert {row["kpi_id"] for row in scopes} == set(ids)
    assert all("," not in row["scope"] for row in scopes)
    for row in definitions:
        assert row["name_en"] and row["name_nl"] and row["definition"]
        filled = {column for column in ("fact", "converted_fact", "growth_of") if row[column]}
        assert filled == {
            "count": {"fact"}, "sum": {"fact"}, "conversion": {"fact", "converted_fact"},
            "growth": {"growth_of"},
        }[row["computation"]], row["kpi_id"]
    insight = {row["kpi_id"] for row in definitions if row["kpi_kind"] == "insight"}
    assert not [row for row in scopes if row["kpi_id"] in insight and row["scope"] == "rep"]


def test_python_restates_no_stage_rule() -> None:
    """Label meanings, intent event types, free-mail domains and sales roles are seeds."""
    rules = {
        "label meanings": re.compile(r"['\"](sales_qualified_lead|marketing_qualified_lead)['\"]"),
        "intent event types": re.compile(r"['\"](demo_request|pricing_request|trial_signup)['\"]"),
        "free-mail domains": re.compile(r"['\"](gmail\.com|hotmail\.com|ziggo\.nl)['\"]"),
        "sales roles as a set": re.compile(r"\(\s*['\"]sdr['\"]\s*,\s*['\"]ae['\"]"),
    }
    offenders = [
        f"{rule}: {path.relative_to(PROJECT_ROOT)}:{number}"
        for path in _python_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for rule, pattern in rules.items()
        if pattern.search(line)
    ]
    assert offenders == [], "\n".join(offenders)


def test_the_spark_thrift_target_sends_the_shared_spark_session_settings_under_set_hiveconf(
) -> None:
    """The Spark session settings (timezone UTC, Parquet instants, …) have one home, the
    profile's anchor, which the in-process and Connect targets merge; a Thrift server applies
    a session setting only under `set:hiveconf:` (a plain key is ignored), so its target
    states the same settings with that prefix, and no others."""
    outputs = yaml.safe_load((DBT / "profiles.yml").read_text(encoding="utf-8"))[
        "sales_kpi"]["outputs"]
    shared = {key: value for key, value in outputs["spark_connect"]["server_side_parameters"]
              .items() if key != "spark.remote"}
    assert "spark.sql.session.timeZone" in shared
    assert outputs["spark_thrift"]["server_side_parameters"] == {
        f"set:hiveconf:{key}": value for key, value in shared.items()
    }
