"""Every setting of the pipeline in one place, each overridable by an environment variable.

The thresholds are part of the agreed definitions (their defaults belong to the definitions
version); the paths and the timezone say where and how the pipeline runs. The environment
variable of a setting is its name upper-cased with the prefix ``SALES_KPI_``, e.g.
``SALES_KPI_BUSINESS_TIMEZONE=Europe/Brussels`` or ``SALES_KPI_MIN_CONVERSATION_SECONDS=240``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from datetime import timezone as FixedOffset
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from pipelines.local_time import local_instant
from pipelines.safe_text import redact, single_line, terminal_safe

ENV_PREFIX = "SALES_KPI_"
# The HiveServer2 auth modes a Thrift server is reached with (PyHive's names, as dbt-spark's
# `thrift` method and the Thrift audit pass them on); a password only with LDAP and CUSTOM
THRIFT_AUTH_MODES = ("NONE", "NOSASL", "LDAP", "CUSTOM")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_FILE = PROJECT_ROOT / "dbt_project" / "dbt_project.yml"
# The engines the dbt build runs on (README, "Engines"); the first is the default.
ENGINES = ("duckdb", "spark")
# dbt vars the pipeline sets per run that are not thresholds of the definitions.
_RUN_VARS = ("as_of", "definitions_custom")


def _definition_defaults() -> dict[str, Any]:
    """The definitions' thresholds and their defaults: the `vars` of dbt_project.yml, their
    one home (a default belongs to the definitions version). Settings, the dbt vars of a run
    and the definitions page all derive from it; a test fails if anything else states one."""
    with DBT_PROJECT_FILE.open(encoding="utf-8") as handle:
        variables = yaml.safe_load(handle)["vars"]
    return {name: value for name, value in variables.items() if name not in _RUN_VARS}


DEFINITION_DEFAULTS = _definition_defaults()
# The loader's thresholds (the extract contract's, not the definitions'): recorded with every
# published run's settings, since they decide which rows reach the marts, and shown in the
# auditor's pack with what they do. A run that changes them is not `+custom` (that marks the
# definitions' thresholds).
LOAD_SETTINGS = {
    "max_bad_row_share": "loading (the extract contract): a file with more than this share of "
                         "bad rows, and at least min_bad_rows_to_reject of them, is rejected "
                         "whole; fewer bad rows are quarantined and the rest loaded",
    "min_bad_rows_to_reject": "loading (the extract contract): a file with fewer bad rows than "
                              "this is never rejected whole (its bad rows are quarantined)",
}
# Settings whose defaults are part of the agreed definitions: a run that changes any of them
# is marked `<version>+custom` (see the definitions).
DEFINITION_SETTINGS = tuple(DEFINITION_DEFAULTS)


# Characters a Spark warehouse's path must not hold: what Hadoop's file system (Spark's tables
# and Parquet) reads as a file pattern, the quote the driver's JVM options are quoted with
# (profiles.yml) and the separator of Derby's connection URL
SPARK_PATH_REFUSED = ("[", "]", "{", "}", "*", "?", "\\", '"', ";")


class SettingsError(ValueError):
    """A setting (usually from the environment) has a value that cannot be used."""


# Secret settings (a field with `metadata={"secret": True}`) never leave the process in clear:
# printed, logged and carried into Dagster's config they are a reference, `secret:<digest>`,
# resolved back to the value only inside a process that holds it (read from the environment
# or given in code). Every value a Settings ever held is remembered here so that
# `redact_secrets` can take it out of any message, whoever wrote the message.
SECRET_PREFIX = "secret:"
# The languages the reports are written in (reporting/i18n.py holds their texts); the
# setting dashboard_language picks the site's index among them.
LANGUAGES = ("en", "nl")
_KNOWN_SECRETS: dict[str, str] = {}


# The digest of a secret reference: scrypt, a deliberately slow and memory-hard function
# (≈ 40 ms and 16 MB a value here), salted for this project. A reference stands in Dagster's run
# storage and UI, where a plain hash of a human-chosen password (the Thrift server's) could
# be checked against a dictionary of guesses at billions a second; each guess now costs what
# one reference costs. Deterministic, so that a process that holds the secret in its
# environment recognises the reference another process made (`_resolve_secret`).
_SECRET_DIGEST_SALT = b"sales-kpi-pipeline/secret-reference/v2"
_SECRET_DIGEST_COST = {"n": 2**14, "r": 8, "p": 1}


@functools.lru_cache(maxsize=32)
def secret_reference(value: str) -> str:
    """The stand-in for a secret value in config and logs: identifies it without revealing
    it, and without offering a fast way to test guesses against it (scrypt, above)."""
    digest = hashlib.scrypt(
        value.encode("utf-8"), salt=_SECRET_DIGEST_SALT, dklen=8, **_SECRET_DIGEST_COST
    )
    return SECRET_PREFIX + digest.hex()


def redact_secrets(text: str) -> str:
    """`text` with every secret setting value this process has seen replaced by `***`, and
    every secret part of one (`secret_parts`): the one redaction used by every printer (CLI,
    alerts, logs)."""
    return redact(text, _redacted_parts(tuple(_KNOWN_SECRETS.values())))


@functools.lru_cache(maxsize=8)
def _redacted_parts(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """Every part of `secrets` to redact, the longest first: worked out once per set of
    secrets, not for every line a run prints."""
    parts = {part for value in secrets for part in secret_parts(value)}
    return tuple(sorted(parts, key=len, reverse=True))


# A part of a secret this long or longer is redacted wherever it stands (a word of a path,
# `services`, names no credential; a webhook's token is longer)
SECRET_PART_CHARACTERS = 12
_URL_PART_SEPARATORS = re.compile(r"[/?&#=]+")
_UNPRINTABLE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def secret_parts(value: str) -> list[str]:
    """The value, and the parts of it an error may quote alone, as it may quote them: an
    HTTP library quotes a malformed URL's path only (a webhook's path is its credential), a
    tab in it as `\\t`. Of a URL: its user and password, and the parts of its path, query
    and fragment (between `/ ? & # =`) — not its scheme and host, which name no one's
    credential and stay readable; of any other secret, the whole. A part is redacted when it
    is SECRET_PART_CHARACTERS long or holds white space or a control character (a token
    pasted with a tab), in every rendering a message may give it (as it is, escaped as Python
    and this project escape, percent-encoded), and so is each long run of it between such
    characters."""
    _scheme, separator, rest = value.partition("://")
    if separator:
        authority, _, tail = rest.partition("/")
        userinfo = authority.rpartition("@")[0]
        candidates = [*userinfo.split(":"), *_URL_PART_SEPARATORS.split(tail)]
    else:
        candidates = [value]
    parts = {value}
    for candidate in candidates:
        odd = _UNPRINTABLE.search(candidate) is not None
        if len(candidate) >= SECRET_PART_CHARACTERS or (odd and candidate.strip()):
            parts.update((candidate, repr(candidate)[1:-1], single_line(candidate),
                          quote(candidate, safe="")))
        if odd:
            parts.update(run for run in _UNPRINTABLE.split(candidate)
                         if len(run) >= SECRET_PART_CHARACTERS)
    return sorted(parts, key=len, reverse=True)


# The dbt to start instead of the one installed beside this Python: a choice of the install (a
# dbt in an environment of its own, a wrapper that execs it), not a setting of a run, so not a
# field of Settings (nor of a run's Dagster config); the test suite names a dbt forked from a
# warm process (tests/warm_dbt.py). Started through the run guard's launcher like any dbt
# (pipelines/dbt_project.py `dbt_executable`).
DBT_EXECUTABLE_ENV = ENV_PREFIX + "DBT_EXECUTABLE"


def installed_dbt() -> Path:
    """The dbt installed beside this Python (the CLI may run without the venv on PATH)."""
    return Path(sys.executable).with_name("dbt")


def chosen_dbt(environ: Mapping[str, str] = os.environ) -> str | None:
    """The dbt DBT_EXECUTABLE_ENV names, or None; anything but an absolute path to an
    executable file is refused (SettingsError: the CLI prints it in one line, exit 2)."""
    chosen = environ.get(DBT_EXECUTABLE_ENV, "")
    if not chosen:
        return None
    path = Path(chosen)
    if not (path.is_absolute() and path.is_file() and os.access(path, os.X_OK)):
        raise SettingsError(
            f"{DBT_EXECUTABLE_ENV}: {printable(chosen)} is not an executable file "
            "(an absolute path)"
        )
    return chosen


def printable(text: object) -> str:
    """`text` as it may reach a terminal or a log: secrets redacted, then control characters
    from data (ESC sequences, OSC titles, C1 controls, bidi overrides) escaped; line breaks
    kept. The one door out for the CLI, the run's console and Dagster's console logger."""
    return terminal_safe(redact_secrets(str(text)))


@dataclass(frozen=True)
class Settings:
    """The effective settings of one run."""

    # Where the pipeline reads and writes.
    extracts_dir: Path = PROJECT_ROOT / "data" / "sample"
    warehouse_dir: Path = PROJECT_ROOT / "warehouse"
    # A CRM export to map first (docs/source-mapping.md): a preset name (salesforce, hubspot)
    # or a mapping YAML; extracts_dir is then the export folder, and the canonical landing the
    # loader reads is written to <warehouse>/landing.
    source_mapping: str | None = None
    # The target overrides a sales manager edits (KPI, scope, scope id, period, target).
    target_overrides_file: Path = PROJECT_ROOT / "targets" / "overrides.csv"
    # Which instant counts as "now" for the definitions; empty = derived from the data.
    as_of: datetime | None = None
    # DuckDB's memory budget per database file, shared by every connection to it (the load's
    # workers too; it spills to disk beyond it), so a big extract does not take the machine.
    duckdb_memory_limit: str = "3GB"
    # DuckDB only: how many dbt nodes the build runs at once (dbt's `threads`). DuckDB spreads
    # each query over every core by itself; more dbt threads overlap dbt's per-node Python work
    # on a machine with cores to spare (bench/README.md, "dbt threads on DuckDB": on 2 cores 1
    # and 4 are within noise at scale 30, and 1 costs ≈ 10 % less CPU on the sample)
    duckdb_threads: int = 4
    # Where the dbt build runs (README, "Engines"): `duckdb` (the default) or `spark` (the
    # `spark` extra and Java 17). The load, the checks and the published file are the same.
    engine: str = "duckdb"
    # Spark only: where it runs (README, "Engines") — at most one of these three, none set
    # meaning `local[*]` (in-process, every core):
    # - spark_master: the driver in dbt's process; `local[N]`, or `spark://host:7077` for a
    #   standalone cluster's master;
    # - spark_remote: a Spark Connect server, `sc://host:15002` (the driver is the server),
    #   with its bearer token, if it takes one, in spark_remote_token (secret; never in the URL);
    # - spark_thrift_host (with port, user, auth and a secret password): a Spark Thrift
    #   server, through dbt-spark's `thrift` method.
    # The shuffle partitions: Spark's default of 200 is for clusters; a small nightly build on
    # one machine spends its time scheduling empty tasks.
    spark_master: str | None = None
    spark_remote: str | None = None
    spark_remote_token: str | None = field(default=None, repr=False, metadata={"secret": True})
    spark_thrift_host: str | None = None
    spark_thrift_port: int = 10000
    spark_thrift_user: str | None = None
    spark_thrift_auth: str | None = None
    spark_thrift_password: str | None = field(
        default=None, repr=False, metadata={"secret": True}
    )
    spark_shuffle_partitions: int = 8
    # Spark only: the driver JVM's heap (`spark.driver.memory`; Spark's own default). With
    # `local[*]` the driver also runs every task, so this is the whole build's memory; on a
    # cluster the executors have their own (bench/README.md, "Issue 15").
    spark_driver_memory: str = "1g"
    # Spark only: how many dbt nodes the Spark build runs at once (dbt's `threads`, one Spark
    # session). Spark's cost is per node; with 2 the driver plans one query while another
    # runs (bench/README.md, "dbt threads on Spark": the sample's build 88.6 → 76.8 s).
    spark_threads: int = 2
    # Nightly operation: when the schedule runs (cron, in the business timezone), how long a
    # new delivery folder must be quiet before the sensor starts a run, retries of a failed
    # step (transient errors such as a locked file), and where alerts go besides the log.
    schedule_cron: str = "0 2 * * *"
    delivery_settle_seconds: int = 60
    step_retries: int = 2
    step_retry_delay_seconds: int = 30
    # How long a run may take before it is stopped as SIGTERM stops it (nothing published, its
    # children ended; exit 124): a hung night — a Spark cluster that never gives the job an
    # executor, a server that stops answering — ends instead of holding the warehouse's lock
    # against the next night. Far above a normal night (minutes at scale 100); 0: no limit.
    max_run_minutes: float = 240.0
    # Secret: for Slack and Teams the URL itself is the credential.
    alert_webhook_url: str | None = field(default=None, repr=False, metadata={"secret": True})
    published_max_age_hours: int = 26
    # Whether the schedule and sensors start running when Dagster first loads them. Off, so
    # `make dev` never starts a full job on its own the first time it opens; the production
    # daemon setup (README, "Nightly operation") turns it on. A status set in the UI wins.
    automations_running: bool = False
    # History for auditors: the published file keeps every run's row in `runs` and, as the
    # marts contract says, every published run's classification and scorecard copies
    # (dim_leads_history, kpi_scorecard_history). An operator may bound the copies to the
    # last this many runs' (runs.history_kept then says whose are gone); 0: no bound.
    history_runs_kept: int = 0
    # The dashboard's language (en or nl); both are written, this one is the site's index.
    dashboard_language: str = "en"
    # Write the dashboard and the auditor's pack at every publish (a headless deployment, or
    # a test that only needs the marts, may turn it off).
    write_site: bool = True
    # Local wall time of the business: periods, naive timestamps, bare dates.
    business_timezone: str = DEFINITION_DEFAULTS["business_timezone"]
    # Loading (contract): when a file is rejected whole for its bad rows (LOAD_SETTINGS says
    # what each does; the loader applies them).
    max_bad_row_share: float = 0.05
    min_bad_rows_to_reject: int = 10
    # Definitions (see README, "Definitions"): defaults from dbt_project.yml's vars.
    min_conversation_seconds: int = DEFINITION_DEFAULTS["min_conversation_seconds"]
    conversion_window_days: int = DEFINITION_DEFAULTS["conversion_window_days"]
    baseline_periods_month: int = DEFINITION_DEFAULTS["baseline_periods_month"]
    baseline_periods_week: int = DEFINITION_DEFAULTS["baseline_periods_week"]
    kpi_program_start: date | None = DEFINITION_DEFAULTS["kpi_program_start"]
    target_uplift: float = DEFINITION_DEFAULTS["target_uplift"]
    ratchet_after: int = DEFINITION_DEFAULTS["ratchet_after"]
    max_order_breaches: float = DEFINITION_DEFAULTS["max_order_breaches"]
    max_label_disagreement: float = DEFINITION_DEFAULTS["max_label_disagreement"]
    min_labels_judged: int = DEFINITION_DEFAULTS["min_labels_judged"]
    max_active_kpis: int = DEFINITION_DEFAULTS["max_active_kpis"]

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.business_timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(
                f"business_timezone: unknown timezone {self.business_timezone!r}"
            ) from exc
        if self.engine not in ENGINES:
            raise SettingsError(
                f"engine: unknown engine {self.engine!r}; expected one of {', '.join(ENGINES)}"
            )
        if self.spark_shuffle_partitions < 1:
            raise SettingsError("spark_shuffle_partitions must be at least 1")
        if self.spark_threads < 1:
            raise SettingsError("spark_threads must be at least 1")
        if not (math.isfinite(self.max_run_minutes * 60) and self.max_run_minutes >= 0):
            raise SettingsError("max_run_minutes must be a number of minutes, 0 for no limit")
        if self.dashboard_language not in LANGUAGES:
            raise SettingsError(
                f"dashboard_language: {printable(repr(self.dashboard_language))} is not a "
                f"language the reports are written in ({', '.join(LANGUAGES)})"
            )
        if self.history_runs_kept < 0:
            raise SettingsError(
                "history_runs_kept must be a number of runs, 0 to keep every run's copies"
            )
        if self.duckdb_threads < 1:
            raise SettingsError("duckdb_threads must be at least 1")
        if not re.fullmatch(r"[1-9][0-9]*[kmgt]", self.spark_driver_memory.strip().lower()):
            raise SettingsError(
                f"spark_driver_memory: {self.spark_driver_memory!r} is not a JVM size such "
                "as 1g or 4096m"
            )
        self._check_where_spark_runs()
        if not 0 <= self.max_bad_row_share <= 1:
            raise SettingsError("max_bad_row_share must be between 0 and 1")
        if not 0 <= self.max_order_breaches < 1:
            # rule 2's check takes any breach without a sales lead for a share of 1 (it
            # exceeds every share of none): a threshold of 1 or more would let it through
            raise SettingsError(
                "max_order_breaches must be at least 0 and below 1 (a share of the contacts "
                "with a sales_lead_at)"
            )
        for name in SECRET_SETTINGS:
            value = getattr(self, name)
            if value:
                _KNOWN_SECRETS[secret_reference(value)] = value

    def _check_where_spark_runs(self) -> None:
        """One way to reach Spark: a master, a Connect server or a Thrift server, never two
        (which one would win is nobody's guess, and a run must say where it ran)."""
        given = [
            ENV_PREFIX + name.upper()
            for name in ("spark_master", "spark_remote", "spark_thrift_host")
            if getattr(self, name)
        ]
        if self.engine == "spark":
            # as Spark is given it: every link on the way resolved
            folder = str(Path(self.warehouse_dir).resolve())
            refused = sorted(set(folder) & set(SPARK_PATH_REFUSED))
            if refused:
                raise SettingsError(
                    f"warehouse_dir: {printable(folder)} holds {' '.join(refused)}: Spark's file "
                    "system (Hadoop) reads [ ] { } * ? \\ as a file pattern, a double quote "
                    "ends the driver's quoted options and a semicolon splits its metastore's "
                    "address — the Spark engine needs a warehouse folder whose path has none "
                    f"of {' '.join(SPARK_PATH_REFUSED)}"
                )
        if len(given) > 1:
            raise SettingsError(
                f"{' and '.join(given)} are set together; Spark is reached in one way: a master "
                "(local[*], spark://host:7077), a Spark Connect server (sc://host:15002) or a "
                "Thrift server; unset the others"
            )
        if self.spark_remote and not self.spark_remote.startswith("sc://"):
            raise SettingsError(
                f"{ENV_PREFIX}SPARK_REMOTE: a Spark Connect URL starts with sc:// "
                "(e.g. sc://127.0.0.1:15002)"
            )
        if self.spark_remote and "token=" in self.spark_remote.lower():
            raise SettingsError(
                f"{ENV_PREFIX}SPARK_REMOTE carries a token: set the URL without it and the "
                f"token in {ENV_PREFIX}SPARK_REMOTE_TOKEN (a secret setting, never logged)"
            )
        if self.spark_remote_token and not self.spark_remote:
            raise SettingsError(
                f"{ENV_PREFIX}SPARK_REMOTE_TOKEN needs {ENV_PREFIX}SPARK_REMOTE as well"
            )
        if self.spark_master and self.spark_master.startswith("sc://"):
            raise SettingsError(
                f"{ENV_PREFIX}SPARK_MASTER is a Spark Connect URL: set {ENV_PREFIX}SPARK_REMOTE "
                "instead"
            )
        if not self.spark_thrift_host and (
            self.spark_thrift_user or self.spark_thrift_auth or self.spark_thrift_password
        ):
            raise SettingsError(
                f"the Spark Thrift settings need {ENV_PREFIX}SPARK_THRIFT_HOST as well"
            )
        if self.spark_thrift_auth and self.spark_thrift_auth not in THRIFT_AUTH_MODES:
            raise SettingsError(
                f"{ENV_PREFIX}SPARK_THRIFT_AUTH: {self.spark_thrift_auth!r} is not an "
                f"auth mode this job can use; one of {', '.join(THRIFT_AUTH_MODES)} (Kerberos "
                "needs a service name and a GSSAPI library the job does not set up)"
            )
        # PyHive refuses either mismatch at connect time: refused here, before anything runs
        if bool(self.spark_thrift_password) != (self.spark_thrift_auth in ("LDAP", "CUSTOM")):
            raise SettingsError(
                f"{ENV_PREFIX}SPARK_THRIFT_PASSWORD is set if and only if "
                f"{ENV_PREFIX}SPARK_THRIFT_AUTH is LDAP or CUSTOM"
            )

    @property
    def spark_connection(self) -> str:
        """How the Spark build reaches Spark: `session` (a driver in dbt's process, on
        `spark_master`), `connect` (a Spark Connect server) or `thrift` (a Thrift server)."""
        if self.spark_remote:
            return "connect"
        if self.spark_thrift_host:
            return "thrift"
        return "session"

    @property
    def raw_database(self) -> Path:
        """The DuckDB file that holds the raw layer and the dbt build."""
        return self.warehouse_dir / "warehouse.duckdb"

    @property
    def spark_dir(self) -> Path:
        """Everything Spark writes for this warehouse: the raw layer as Parquet, its tables,
        the Derby metastore and its logs (never the source tree)."""
        return self.warehouse_dir / "spark"

    @property
    def build_database(self) -> Path:
        """The DuckDB file the checks, the row counts and the publisher read the build from:
        the warehouse file itself on DuckDB; on Spark a file of views over the Parquet
        folders of Spark's tables (pipelines/spark_build.py)."""
        if self.engine == "spark":
            return self.spark_dir / "build.duckdb"
        return self.raw_database

    @property
    def quality_dir(self) -> Path:
        """The checks' results: GX's validation results and its Data Docs site."""
        return self.warehouse_dir / "quality"

    @property
    def landing_dir(self) -> Path:
        """The canonical landing the loader reads."""
        return self.warehouse_dir / "landing" if self.source_mapping else self.extracts_dir

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.business_timezone)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def definition_overrides(self) -> dict[str, Any]:
        """The definition settings whose value differs from the agreed default."""
        default = Settings()
        return {
            name: getattr(self, name)
            for name in DEFINITION_SETTINGS
            if getattr(self, name) != getattr(default, name)
        }

    @property
    def run_time_limit_seconds(self) -> float | None:
        """The run's time limit in seconds (max_run_minutes), None when it has none."""
        return self.max_run_minutes * 60 if self.max_run_minutes > 0 else None

    def run_settings(self) -> dict[str, Any]:
        """What a published run records as its settings (`runs.settings`): the definitions'
        thresholds, the timezone, a pinned as_of and the loader's thresholds — what decides
        the numbers (paths are where, not what, so they are left out)."""
        values = {name: _to_text(getattr(self, name)) for name in DEFINITION_SETTINGS}
        values["as_of"] = _to_text(self.as_of)
        values.update({name: _to_text(getattr(self, name)) for name in LOAD_SETTINGS})
        return values

    def as_dict(self) -> dict[str, Any]:
        """Every setting as text, secrets as their `secret:<digest>` reference: safe to print,
        log and hand to Dagster (whose run storage keeps resource config)."""
        return {
            f.name: (
                secret_reference(value)
                if f.metadata.get("secret") and (value := getattr(self, f.name))
                else _to_text(getattr(self, f.name))
            )
            for f in fields(self)
        }

    @classmethod
    def from_text(
        cls, values: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Settings from `as_dict()` output (text values), e.g. carried in a Dagster resource.

        A secret reference is resolved from the values this process holds, else from the
        environment variable of the setting when its digest matches; otherwise SettingsError.
        """
        types = {f.name: f.type for f in fields(cls)}
        parsed = {
            name: (
                _resolve_secret(name, str(value), environ) if name in SECRET_SETTINGS
                else _parse(name, types[name], str(value)) if value is not None else None
            )
            for name, value in values.items()
            if name in types
        }
        return cls(**parsed)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``SALES_KPI_*`` variables, then explicit overrides (CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if f.name != "as_of" and raw is not None and raw.strip() != "":
                values[f.name] = _parse(f.name, f.type, raw.strip())
        as_of = environ.get(ENV_PREFIX + "AS_OF", "").strip()
        if as_of:  # a naive as_of is local time in the (possibly overridden) business timezone
            timezone = values.get("business_timezone", DEFINITION_DEFAULTS["business_timezone"])
            values["as_of"] = _parse_as_of(as_of, timezone)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


SECRET_SETTINGS: tuple[str, ...] = tuple(
    f.name for f in fields(Settings) if f.metadata.get("secret")
)


def _resolve_secret(name: str, text: str, environ: Mapping[str, str] | None) -> str | None:
    if text in ("", "None"):
        return None
    if not text.startswith(SECRET_PREFIX):
        return text  # given in clear (hand-written config): used, and remembered for redaction
    if text in _KNOWN_SECRETS:
        return _KNOWN_SECRETS[text]
    raw = (os.environ if environ is None else environ).get(ENV_PREFIX + name.upper(), "").strip()
    if raw and secret_reference(raw) == text:
        return raw
    raise SettingsError(
        f"{name}: the secret setting is not available in this process; set "
        f"{ENV_PREFIX}{name.upper()} in its environment"
    )


def _parse_as_of(raw: str, timezone: str) -> datetime:
    try:
        return parse_instant(raw, timezone)
    except ValueError as exc:
        raise SettingsError(f"{ENV_PREFIX}AS_OF={raw!r}: {exc}") from exc


def _parse(name: str, type_name: Any, raw: str) -> Any:
    type_text = str(type_name)
    try:
        if "bool" in type_text:
            if raw.lower() in ("1", "true", "yes", "y", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "n", "off"):
                return False
            raise ValueError("expected true or false")
        if "Path" in type_text:
            return Path(raw).expanduser().resolve()
        if "datetime" in type_text:
            return parse_instant(raw)
        if "date" in type_text:
            return _parsed(date.fromisoformat, raw, "expected a date, YYYY-MM-DD")
        if "int" in type_text:
            return _parsed(int, raw, "expected a whole number")
        if "float" in type_text:
            return _parsed(float, raw, "expected a number")
    except ValueError as exc:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}={raw!r}: {exc}") from exc
    return raw


INSTANT_FORMAT = (
    "expected an ISO 8601 date and time, e.g. 2026-11-30T23:00:00+01:00 or 2026-11-30T22:00Z "
    "(without an offset: local time in the business timezone; offsets run to ±23:59)"
)


def parse_instant(text: str, timezone: str = "Europe/Amsterdam") -> datetime:
    """An ISO 8601 instant; a naive one is local time in the business timezone, made an
    instant as the loader makes the same text in an extract one (pipelines/local_time.py: in
    the autumn overlap the later instant, in a spring gap moved forward). Python's own
    messages ("Invalid isoformat string", "offset must be a timedelta strictly between …")
    are replaced by one that says what is expected."""
    value = _parsed(datetime.fromisoformat, text.strip().replace("Z", "+00:00"), INSTANT_FORMAT)
    if value.tzinfo is None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {timezone!r}") from None
        instant = local_instant(value, timezone)
        # at its local offset, fixed: a zone's own tzinfo would make the later instant of an
        # overlap `fold=1`, which compares unequal to every other zone's datetime (PEP 495)
        value = instant.astimezone(FixedOffset(instant.astimezone(ZoneInfo(timezone)).utcoffset()))
    return value


def _parsed(parse: Any, raw: str, expected: str) -> Any:
    """`parse(raw)`, its failure said as what was expected (not Python's wording, such as
    "invalid literal for int() with base 10")."""
    try:
        return parse(raw)
    except ValueError:
        raise ValueError(expected) from None


def _to_text(value: Any) -> Any:
    if isinstance(value, (Path, date, datetime)):
        return str(value)
    return value
