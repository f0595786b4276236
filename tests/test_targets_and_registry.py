"""Target overrides (the file a sales manager edits) and the KPI registry's limit."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest
from dbt_as_installed import dbt_as_installed

from pipelines.dbt_parse_ahead import PARTIAL_PARSE
from pipelines.dbt_project import DBT_PROJECT_DIR, prepared_dbt_project
from pipelines.targets import TargetOverrideError, parse_overrides, read_registry

REPS = {"u1", "u2"}
TEAMS = {"Team Noord", "Unassigned"}


def overrides_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "overrides.csv"
    header = "kpi_id,scope,scope_id,period_start,target\n"
    path.write_text(header + "".join(f"{line}\n" for line in lines))
    return path


def parse(path: Path):
    return parse_overrides(path, read_registry(), REPS, TEAMS)


def test_a_valid_override_file_is_read(tmp_path: Path) -> None:
    path = overrides_file(
        tmp_path,
        "cold_calls,rep,u1,2026-03-02,40",
        "new_revenue,team,Team Noord,2026-03-01,25000",
        "new_marketing_leads,company,all,2026-04-01,30",
    )
    overrides = parse(path)
    assert [(o.kpi_id, o.scope_id, o.target, o.line) for o in overrides] == [
        ("cold_calls", "u1", 40.0, 2),
        ("new_revenue", "Team Noord", 25000.0, 3),
        ("new_marketing_leads", "all", 30.0, 4),
    ]


def test_a_missing_file_means_no_overrides(tmp_path: Path) -> None:
    assert parse(tmp_path / "absent.csv") == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("conv_quote_to_customer,team,Team Noord,2026-03-01,0.4", "insight KPIs get no targets"),
        ("cold_mails,rep,u1,2026-03-02,40", "unknown KPI 'cold_mails'"),
        ("new_marketing_leads,rep,u1,2026-03-01,4", "unknown scope 'rep' for new_marketing_leads"),
        ("cold_calls,region,u1,2026-03-02,40", "unknown scope 'region'"),
        ("cold_calls,rep,u9,2026-03-02,40", "unknown rep 'u9'"),
        ("cold_calls,team,Team West,2026-03-02,40", "unknown team 'Team West'"),
        ("cold_calls,company,everyone,2026-03-02,40", "scope_id is 'all'"),
        ("cold_calls,rep,u1,2026-03-03,40", "2026-03-03 is not a Monday"),
        ("new_revenue,rep,u1,2026-03-02,40", "2026-03-02 is not the first day of a month"),
        ("new_revenue,rep,u1,March 2026,40", "is not a date"),
        ("new_revenue,rep,u1,2026-03-01,lots", "'lots' is not a number"),
        ("new_revenue,rep,u1,2026-03-01,-5", "must be a finite number ≥ 0"),
        ("new_revenue,rep,u1,2026-03-01,inf", "'inf' must be a finite number ≥ 0"),
        ("new_revenue,rep,u1,2026-03-01,1e400", "'1e400' must be a finite number ≥ 0"),
        ("new_revenue,rep,u1,2026-03-01,NaN", "'NaN' must be a finite number ≥ 0"),
    ],
)
def test_a_bad_override_is_an_error_that_names_the_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = overrides_file(tmp_path, "cold_calls,rep,u2,2026-03-02,40", line)
    with pytest.raises(TargetOverrideError) as raised:
        parse(path)
    assert "overrides.csv line 3" in str(raised.value)
    assert message in str(raised.value)


def test_two_overrides_for_the_same_period_are_an_error(tmp_path: Path) -> None:
    path = overrides_file(
        tmp_path, "cold_calls,rep,u1,2026-03-02,40", "cold_calls,rep,u1,2026-03-02,50"
    )
    with pytest.raises(TargetOverrideError, match="line 3: same KPI, scope and period as line 2"):
        parse(path)


def _dbt_registry_check(project: Path, warehouse: Path) -> subprocess.CompletedProcess[str]:
    """`dbt build` of the registry seed, its scopes and the registry check alone, as a run
    with the default settings runs dbt (tests/dbt_as_installed.py), so dbt reuses the
    install's parse (copied into the project's copy) and re-parses only the changed seed
    instead of the whole project (as test_dbt_unit_tests.py does)."""
    return dbt_as_installed(
        "build", "--select", "kpi_definitions", "kpi_scopes", "assert_at_most_max_active_kpis",
        warehouse=warehouse, project=project, target=project / "target",
    )


@pytest.mark.slow  # two dbt builds
def test_the_registry_check_fails_when_a_13th_kpi_is_activated(tmp_path: Path) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(
        DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages")
    )
    installed = prepared_dbt_project()
    (project / "target").mkdir()
    shutil.copyfile(installed.project_dir / installed.target_path / PARTIAL_PARSE,
                    project / "target" / PARTIAL_PARSE)
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    seed = project / "seeds" / "definitions" / "kpi_definitions.csv"
    with seed.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sum(r["is_active"] == "true" for r in rows) == 11

    def write(extra: int) -> None:
        with seed.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
            for n in range(extra):
                writer.writerow({**rows[0], "kpi_id": f"extra_{n}", "is_active": "true",
                                 "display_order": str(100 + n)})

    write(1)  # 12 active: allowed
    ok = _dbt_registry_check(project, warehouse)
    assert ok.returncode == 0, ok.stdout[-2000:]
    write(2)  # 13 active: the method warns against measuring too much
    too_many = _dbt_registry_check(project, warehouse)  # the seed is loaded again
    assert too_many.returncode != 0
    assert "assert_at_most_max_active_kpis" in too_many.stdout

