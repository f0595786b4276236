"""The audit of write–audit–publish: the consistency rules as GX suites, run on the build
before anything is published.

Each check is a GX suite file (`expectations/suites/<suite>.json`) validated against the rows
of one SQL file (`expectations/queries/<query>.sql`). Blocking checks stop the publication;
warnings are reported and published with the marts. The rule numbers are those of the
agreed definitions ("Consistency rules"). The queries are portable SQL: the same files run
on DuckDB and on Spark (pipelines/quality/run_checks.py says where they run).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.quality.data_docs import DATA_AS_TEXT_MARK, make_site_offline
from pipelines.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context import AbstractDataContext

EXPECTATIONS_ROOT = PROJECT_ROOT / "expectations"
QUERIES = EXPECTATIONS_ROOT / "queries"
OFFENDING_KEYS_SHOWN = 20  # per failed expectation in the validation results and Data Docs


@dataclass(frozen=True)
class QualityCheck:
    name: str  # the Dagster check and the GX suite
    asset: str  # the mart it guards
    blocking: bool
    description: str
    query: str  # file name in expectations/queries, without .sql
    keys: tuple[str, ...]  # identify an offending row (named in the Data Docs too)
    problem: str  # SQL condition (over the query's columns) of an offending row

    @property
    def sql(self) -> str:
        return (QUERIES / f"{self.query}.sql").read_text(encoding="utf-8")

    @property
    def result_format(self) -> dict[str, Any]:
        """GX's COMPLETE format with the check's key columns, so that each failed
        expectation lists its offending keys in the results and the Data Docs (GX's SQL engine
        fetches at most `partial_unexpected_count` of those keys; the audit on Spark asks for
        SUMMARY and stores the same first keys under the same name: gx_spark
        `with_offending_keys`)."""
        return {
            "result_format": "COMPLETE",
            "unexpected_index_column_names": list(self.keys),
            "partial_unexpected_count": OFFENDING_KEYS_SHOWN,
            "return_unexpected_index_query": False,
        }


CHECKS: tuple[QualityCheck, ...] = (
    QualityCheck(
        "lead_stages", "dim_leads", True,
        "Rule 1: every live contact has exactly one agreed stage and a definitions version.",
        "lead_stages", ("contact_id",),
        "contact_id is null or stage is null or definitions_version is null or stage not in "
        "('none', 'marketing_lead', 'sales_lead', 'quote', 'customer') "
        "or live_contacts <> classified_contacts",
    ),
    QualityCheck(
        "stage_order", "dim_leads", True,
        "Rule 2: stage-order breaches stop publishing when the contacts with at least one "
        "exceed max_order_breaches of the contacts with a sales_lead_at.",
        "stage_order", ("contact_id",), "has_order_breach",
    ),
    QualityCheck(
        "stage_order_breaches", "dim_leads", False,
        "Rule 2: any stage-order breach (below the threshold) is a data issue that warns.",
        "stage_order", ("contact_id",), "has_order_breach",
    ),
    QualityCheck(
        "marketing_leads_qualified", "dim_leads", True,
        "Rule 3: every marketing lead has a qualifying event of an intent type and is fit.",
        "marketing_leads_qualified", ("contact_id",),
        "not (has_qualifying_event and is_intent_event and is_at_the_event and is_fit)",
    ),
    QualityCheck(
        "label_agreement", "label_consistency", False,
        "Rule 4: per labeller, CRM labels agree with the definitions (a warning).",
        "label_agreement", ("labeller", "labeller_name"), "exceeds_threshold",
    ),
    QualityCheck(
        "classification_stability", "dim_leads", True,
        "Rule 5: against the last published run (same version and settings), a contact whose "
        "inputs did not change keeps its stage and stage timestamps.",
        "classification_stability", ("contact_id",), "not is_stable",
    ),
    QualityCheck(
        "kpi_sanity", "kpi_values", True,
        "Rule 6: conversion rates in [0, 1], revenue >= 0, one row per KPI key, complete "
        "zero-filled series.",
        "kpi_sanity", ("kpi_id", "scope", "scope_id", "period_start"),
        "conversion_rate not between 0 and 1 or revenue < 0 or rows_per_key <> 1 "
        "or not is_series_complete",
    ),
    QualityCheck(
        "kpi_reconciliation", "kpi_values", True,
        "Facts reconcile (v1.1): for every count and sum KPI and period, the company's value "
        "equals the facts it counts in the fact marts, and each team's value equals the sum "
        "of its reps'.",
        "kpi_reconciliation", ("kpi_id", "scope", "scope_id", "period_start"),
        "not is_reconciled",
    ),
    QualityCheck(
        "fx_rate_gaps", "fct_deals", False,
        "Revenue: a deal with an amount but no same-or-earlier fx rate is listed as a data "
        "issue (a warning; it blocks only for won new_business and upsell deals, above).",
        "revenue_in_eur", ("deal_id",), "is_missing_fx_rate",
    ),
    QualityCheck(
        "staging_sanity", "fct_deals", False,
        "Sanity of the CRM data: no deal closed before it was opened, no quote sent before "
        "it was created, no negative call duration (warnings: fix them in the CRM).",
        "staging_sanity", ("record_type", "record_id"), "is_insane",
    ),
    QualityCheck(
        "revenue_in_eur", "fct_deals", True,
        "Revenue: every won new_business or upsell deal with an amount has an EUR amount "
        "(an fx rate), and EUR amounts are never negative.",
        "revenue_in_eur", ("deal_id",), "not has_eur_amount or amount_eur < 0",
    ),
)


@dataclass(frozen=True)
class CheckOutcome:
    check: QualityCheck
    passed: bool
    evaluated_rows: int
    failing_expectations: list[str] = field(default_factory=list)
    offending_rows: int = 0
    first_offenders: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        if self.passed:
            return f"{self.check.name}: passed ({self.evaluated_rows:,} rows)"
        offenders = ", ".join(self.first_offenders)
        return (
            f"{self.check.name}: FAILED — {'; '.join(self.failing_expectations)}"
            + (f"; {self.offending_rows:,} offending rows, first: {offenders}" if offenders else "")
        )


def expectation_parameters(settings: Settings) -> dict[str, Any]:
    """The suites' `$PARAMETER`s, from the run's settings."""
    return {"max_order_breaches": settings.max_order_breaches}


def staged_gx_project(results_dir: Path) -> Path:
    """The GX project (config and suites) copied under the warehouse, where GX may write its
    query assets and validation definitions: a run never writes into the project's own
    `expectations/` (an installed, read-only deployment works). The copy is refreshed from the
    project's files at every run, so the suites in `expectations/suites` stay the source."""
    staged = results_dir / "gx_project"
    for part in ("gx", "suites"):
        shutil.copytree(EXPECTATIONS_ROOT / part, staged / part, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("uncommitted"))
    return staged


def validate_checks(
    context: AbstractDataContext,
    checks: tuple[QualityCheck, ...],
    results_dir: Path,
    validate: Callable[[QualityCheck], ExpectationSuiteValidationResult],
    rows: Callable[[str], list[tuple[Any, ...]]],
) -> list[CheckOutcome]:
    """Validate each check (`validate`: its suite against its query's rows, on whichever
    engine), bring the Data Docs up to date, and name the first offending rows of each failed check
    (`rows`: a plain query on the same engine)."""
    validated, results = [], []
    for check in checks:
        started = time.perf_counter()
        result = validate(check)
        results.append(result)
        failing = [
            _expectation_label(r.expectation_config, r.result)
            for r in result.results
            if not r.success
        ]
        count = max((r.result.get("element_count", 0) for r in result.results), default=0)
        validated.append((check, result.success, count, failing, time.perf_counter() - started))
    build_run_data_docs(context, results, results_dir / "data_docs")
    outcomes = []
    for check, passed, count, failing, seconds in validated:
        offending, first = (0, []) if passed else _offenders(rows, check)
        outcomes.append(CheckOutcome(check, passed, count, failing, offending, first, seconds))
    return outcomes


def build_run_data_docs(
    context: AbstractDataContext, results: list[ExpectationSuiteValidationResult], site: Path
) -> None:
    """Bring the Data Docs up to date after this run's validations: the pages of this run's
    results (and of any kept result that has no page yet: a run stopped before its pages were
    written, a lost page), the suites' pages and the index, then made offline. The pages of
    earlier runs are on disk already and are not rendered again: rendering every kept result
    again (GX's `build_data_docs()` without identifiers, ≈ 10 ms a page, 11 pages a night)
    made a night's Data Docs cost grow with the nights kept. (The index still lists every
    kept result: that part grows, by a file read per result.) Once, on a site whose pages were
    written before its data values were escaped (no DATA_AS_TEXT_MARK), every kept result's
    page is drawn again."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    if not results:
        return
    ran = set()
    for result in results:
        run_id = result.meta["run_id"]
        run_id = RunIdentifier(**run_id) if isinstance(run_id, dict) else run_id
        ran.add((result.suite_name, run_id.to_tuple()))
    stored = [  # (suite, run) of each kept result, with its key (a run may have several)
        ((key.expectation_suite_identifier.name, key.run_id.to_tuple()), key)
        for key in context.validation_results_store.list_keys()
    ]
    if missing := sorted(ran - {suite_run for suite_run, _ in stored}):
        raise RuntimeError(f"validation results not found in the results store: {missing}")
    data_as_text = (site / DATA_AS_TEXT_MARK).is_file()
    keys = [
        key for suite_run, key in stored
        if suite_run in ran or not data_as_text or not _validation_page(site, key).is_file()
    ]
    suites = [ExpectationSuiteIdentifier(name=name) for name in sorted({n for n, _ in ran})]
    context.build_data_docs(resource_identifiers=[*suites, *keys])
    make_site_offline(site, since_last=True)
    (site / DATA_AS_TEXT_MARK).touch()


def _validation_page(site: Path, key: Any) -> Path:
    """Where GX's site puts a validation result's page:
    `validations/<suite>/<run name>/<run time>/<batch>.html`."""
    *folders, batch = key.to_tuple()
    return site.joinpath("validations", *folders, f"{batch}.html")


def _expectation_label(config: Any, result: dict[str, Any]) -> str:
    kwargs = config.kwargs
    column = kwargs.get("column") or ",".join(
        str(kwargs[k]) for k in ("column_A", "column_B") if k in kwargs
    )
    text = f"{config.type}({column})"
    if "unexpected_count" in result:
        text += (
            f": {result['unexpected_count']:,} unexpected "
            f"({result.get('unexpected_percent', 0):.2f}%)"
        )
    return text


def _offenders(
    rows: Callable[[str], list[tuple[Any, ...]]], check: QualityCheck
) -> tuple[int, list[str]]:
    keys = ", ".join(check.keys)
    base = (
        f"select {keys} from (\n{check.sql}\n) as checked "
        f"where coalesce({check.problem}, false)"
    )
    count = rows(f"select count(*) from ({base}) as offending")[0][0]
    # nulls last on both engines (Spark sorts them first by default)
    order = ", ".join(f"{key} nulls last" for key in check.keys)
    first = rows(f"{base} order by {order} limit 10")
    return int(count), ["/".join(str(v) for v in row) for row in first]


def data_docs_index(settings: Settings) -> Path:
    """The stable path of the latest Data Docs (every run's validations are listed; they open
    offline, from disk)."""
    return settings.quality_dir / "data_docs" / "index.html"
