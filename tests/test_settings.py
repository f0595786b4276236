"""Settings: defaults, environment overrides and their parsing."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from pipelines.settings import (
    DBT_EXECUTABLE_ENV,
    Settings,
    SettingsError,
    chosen_dbt,
    installed_dbt,
    parse_instant,
)


def test_a_naive_as_of_from_the_environment_is_local_to_the_business_timezone() -> None:
    settings = Settings.from_env(
        {"SALES_KPI_AS_OF": "2026-07-01 12:00", "SALES_KPI_BUSINESS_TIMEZONE": "Europe/London"}
    )
    assert settings.as_of is not None
    assert settings.as_of.utcoffset().total_seconds() == 3600  # BST, not CEST


@pytest.mark.parametrize(("text", "instant"), [
    # the autumn overlap: 02:30 happens twice; the later, standard-time instant (CET)
    ("2026-10-25T02:30", datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
    # the spring gap: 02:30 never happens; moved forward by the gap, to 03:30 CEST
    ("2026-03-29T02:30", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
])
def test_a_naive_as_of_at_a_dst_change_is_the_instant_the_same_text_has_in_an_extract(
    text: str, instant: datetime
) -> None:
    settings = Settings.from_env({"SALES_KPI_AS_OF": text})
    assert settings.as_of == instant
    assert parse_instant(text, "Europe/Amsterdam") == instant


@pytest.mark.parametrize(("environment", "said"), [
    ({"SALES_KPI_AS_OF": "9999-12-31T23:59", "SALES_KPI_BUSINESS_TIMEZONE": "America/Vancouver"},
     "outside the instants a run can take"),
    ({"SALES_KPI_AS_OF": "2026-01-01T00:00", "SALES_KPI_BUSINESS_TIMEZONE": "Mars/Olympus"},
     "unknown timezone 'Mars/Olympus'"),
])
def test_a_naive_as_of_that_names_no_instant_is_refused_saying_why(
    environment: dict[str, str], said: str
) -> None:
    with pytest.raises(SettingsError, match=said):
        Settings.from_env(environment)


# Zones whose rules changed in recent IANA releases, and the default business timezone.
ZONES_OF_RECENT_CHANGES = (
    "America/Vancouver", "America/Edmonton", "America/Winnipeg", "America/Havana",
    "Africa/Casablanca", "Europe/Amsterdam", "Europe/London", "Asia/Kathmandu",
)


def test_python_reads_the_time_zone_rules_duckdb_computes_with() -> None:
    """Every month's 1st and 15th, 2020–2035: the local time Python's zoneinfo gives is the one
    DuckDB gives (the pinned tzdata, not the operating system's older copy, which put
    Vancouver on UTC−8 after November 2026 where DuckDB keeps UTC−7)."""
    moments = [datetime(year, month, day, 12, tzinfo=UTC)
               for year in range(2020, 2036) for month in range(1, 13) for day in (1, 15)]
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        for zone in ZONES_OF_RECENT_CHANGES:
            engine = [local for (local,) in con.execute(
                "select timezone(?, unnest(?::timestamptz[]))", [zone, moments]).fetchall()]
            python = [moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
                      for moment in moments]
            assert python == engine, zone


@pytest.mark.parametrize(("variable", "raw", "expected"), [
    ("SALES_KPI_DUCKDB_THREADS", "abc", "expected a whole number"),
    ("SALES_KPI_TARGET_UPLIFT", "ten percent", "expected a number"),
    ("SALES_KPI_KPI_PROGRAM_START", "2026-13-01", "expected a date, YYYY-MM-DD"),
    ("SALES_KPI_AS_OF", "yesterday", "expected an ISO 8601 date and time"),
    ("SALES_KPI_AS_OF", "2026-11-01T00:00:00+25:00", "offsets run to ±23:59"),
])
def test_a_bad_setting_says_what_is_expected_not_pythons_wording(
    variable: str, raw: str, expected: str,
) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({variable: raw})
    message = str(refused.value)
    assert message.startswith(f"{variable}={raw!r}: ") and expected in message
    assert "isoformat" not in message and "literal" not in message and "timedelta" not in message


def test_the_engine_is_duckdb_unless_the_environment_asks_for_spark() -> None:
    assert Settings.from_env({}).engine == "duckdb"
    spark = Settings.from_env({
        "SALES_KPI_ENGINE": "spark", "SALES_KPI_SPARK_MASTER": "spark://127.0.0.1:7077",
        "SALES_KPI_SPARK_SHUFFLE_PARTITIONS": "4",
    })
    assert (spark.engine, spark.spark_master, spark.spark_shuffle_partitions) == (
        "spark", "spark://127.0.0.1:7077", 4
    )
    # Spark's build is read through its own file of views; DuckDB's is the warehouse file
    assert spark.build_database == spark.warehouse_dir / "spark" / "build.duckdb"
    assert Settings().build_database == Settings().raw_database


@pytest.mark.parametrize("share", ["1", "1.5", "-0.01"])
def test_max_order_breaches_is_a_share_below_one(share: str) -> None:
    """Rule 2's threshold is a share of the contacts with a sales_lead_at, below 1: with no
    sales lead, any breach counts as a share of 1, which a threshold of 1 would let pass."""
    with pytest.raises(SettingsError, match=r"max_order_breaches must be at least 0 and below 1"):
        Settings.from_env({"SALES_KPI_MAX_ORDER_BREACHES": share})


def test_an_unknown_engine_is_refused_naming_the_engines() -> None:
    with pytest.raises(SettingsError, match=r"engine: unknown engine 'postgres'.*duckdb, spark"):
        Settings.from_env({"SALES_KPI_ENGINE": "postgres"})


def test_spark_is_reached_in_one_way_chosen_by_the_environment() -> None:
    """Unset: local[*] in-process; a master, a Spark Connect URL or a Thrift server, each
    picking its dbt target (profiles.yml)."""
    from pipelines.spark_build import spark_target

    cases = {
        (): ("session", "spark"),
        (("SALES_KPI_SPARK_MASTER", "spark://127.0.0.1:7077"),): ("session", "spark"),
        (("SALES_KPI_SPARK_REMOTE", "sc://127.0.0.1:15002"),): ("connect", "spark_connect"),
        (("SALES_KPI_SPARK_THRIFT_HOST", "127.0.0.1"), ("SALES_KPI_SPARK_THRIFT_PORT", "10001")):
            ("thrift", "spark_thrift"),
    }
    for env, expected in cases.items():
        settings = Settings.from_env({"SALES_KPI_ENGINE": "spark", **dict(env)})
        assert (settings.spark_connection, spark_target(settings)) == expected, env
    assert Settings.from_env({"SALES_KPI_SPARK_THRIFT_HOST": "h", "SALES_KPI_SPARK_THRIFT_PORT":
                              "10001"}).spark_thrift_port == 10001


def test_only_one_of_master_remote_and_thrift_may_be_set() -> None:
    ways = {"SALES_KPI_SPARK_MASTER": "spark://127.0.0.1:7077",
            "SALES_KPI_SPARK_REMOTE": "sc://127.0.0.1:15002",
            "SALES_KPI_SPARK_THRIFT_HOST": "127.0.0.1"}
    for left_out in [None, *ways]:
        env = {k: v for k, v in ways.items() if k != left_out}
        with pytest.raises(SettingsError, match=r"are set together; Spark is reached in one way"):
            Settings.from_env(env)


def test_a_spark_connect_url_goes_in_spark_remote_and_starts_with_sc() -> None:
    with pytest.raises(SettingsError, match=r"SALES_KPI_SPARK_REMOTE: .* starts with sc://"):
        Settings.from_env({"SALES_KPI_SPARK_REMOTE": "spark://127.0.0.1:7077"})
    with pytest.raises(SettingsError, match=r"SALES_KPI_SPARK_MASTER is a Spark Connect URL"):
        Settings.from_env({"SALES_KPI_SPARK_MASTER": "sc://127.0.0.1:15002"})
    with pytest.raises(SettingsError, match=r"need SALES_KPI_SPARK_THRIFT_HOST"):
        Settings.from_env({"SALES_KPI_SPARK_THRIFT_USER": "etl"})


def test_spark_server_credentials_are_secret_and_reach_dbt_under_scrubbed_names(
    tmp_path: Path,
) -> None:
    """A Spark Connect token and the Thrift password never appear in clear in what is
    printed or handed to Dagster, nor in the run's log line (which names the server); dbt
    reads them from DBT_ENV_SECRET_* variables, whose values dbt scrubs from its own logs."""
    from pipelines.settings import redact_secrets
    from pipelines.spark_build import spark_dbt_environment, spark_for_logs

    connect = Settings(engine="spark", warehouse_dir=tmp_path,
                       spark_remote="sc://127.0.0.1:15002", spark_remote_token="s3cr3t-connect")
    thrift = Settings(engine="spark", warehouse_dir=tmp_path, spark_thrift_host="10.0.0.5",
                      spark_thrift_user="etl", spark_thrift_auth="LDAP",
                      spark_thrift_password="s3cr3t-thrift")
    for settings, secret in ((connect, "s3cr3t-connect"), (thrift, "s3cr3t-thrift")):
        shown = " ".join(map(str, (settings.as_dict(), repr(settings), spark_for_logs(settings))))
        assert secret not in shown
        assert Settings.from_text(settings.as_dict()) == settings  # resolved in this process
        env = spark_dbt_environment(settings)
        assert [k for k, v in env.items() if secret in v] == [
            next(k for k in env if k.startswith("DBT_ENV_SECRET_"))
        ]
        assert secret not in redact_secrets(f"failed: {env}")
    assert spark_dbt_environment(connect)["DBT_ENV_SECRET_SALES_KPI_SPARK_REMOTE"] == (
        "sc://127.0.0.1:15002/;token=s3cr3t-connect"
    )
    assert spark_for_logs(connect) == "Spark Connect server sc://127.0.0.1:15002"
    assert spark_for_logs(thrift) == "Spark Thrift server 10.0.0.5:10000"


def test_a_thrift_auth_mode_the_job_cannot_use_is_refused() -> None:
    """PyHive's HiveServer2 modes without Kerberos (which needs a service name and a GSSAPI
    library the job does not set up); a password only where it is sent: LDAP and CUSTOM."""
    from pipelines.settings import THRIFT_AUTH_MODES

    host = {"SALES_KPI_SPARK_THRIFT_HOST": "10.0.0.5"}
    with pytest.raises(SettingsError, match=r"SPARK_THRIFT_AUTH: .*KERBEROS.*not an auth mode"):
        Settings.from_env({**host, "SALES_KPI_SPARK_THRIFT_AUTH": "KERBEROS"})
    password = {"SALES_KPI_SPARK_THRIFT_PASSWORD": "s3cr3t"}
    for mode in THRIFT_AUTH_MODES:
        auth = {**host, "SALES_KPI_SPARK_THRIFT_AUTH": mode}
        takes_password = mode in ("LDAP", "CUSTOM")
        assert Settings.from_env({**auth, **(password if takes_password else {})})
        with pytest.raises(SettingsError, match=r"PASSWORD is set if and only if .*LDAP or"):
            Settings.from_env({**auth, **({} if takes_password else password)})
    with pytest.raises(SettingsError, match=r"PASSWORD is set if and only if"):
        Settings.from_env({**host, **password})  # no auth: NONE


def test_a_spark_connect_token_is_refused_inside_the_url() -> None:
    with pytest.raises(SettingsError, match=r"carries a token: .*SALES_KPI_SPARK_REMOTE_TOKEN"):
        Settings.from_env({"SALES_KPI_SPARK_REMOTE": "sc://h:15002/;token=abc"})
    with pytest.raises(SettingsError, match=r"SPARK_REMOTE_TOKEN needs SALES_KPI_SPARK_REMOTE"):
        Settings.from_env({"SALES_KPI_SPARK_REMOTE_TOKEN": "abc"})


def test_two_ways_to_reach_spark_are_refused_by_the_cli_before_anything_runs(
    tmp_path: Path,
) -> None:
    """Exit 2, one line naming both variables (not blamed on --as-of), nothing written."""
    import os
    import subprocess
    import sys

    from pipelines.settings import PROJECT_ROOT

    warehouse = tmp_path / "warehouse"
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--engine", "spark",
         "--extracts", str(tmp_path), "--warehouse", str(warehouse)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "SALES_KPI_SPARK_MASTER": "spark://127.0.0.1:7077",
             "SALES_KPI_SPARK_REMOTE": "sc://127.0.0.1:15002"},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: SALES_KPI_SPARK_MASTER and SALES_KPI_SPARK_REMOTE are set together; Spark is "
        "reached in one way: a master (local[*], spark://host:7077), a Spark Connect server "
        "(sc://host:15002) or a Thrift server; unset the others"
    ]
    assert not warehouse.exists()


def test_a_bad_as_of_is_refused_by_the_cli_in_one_line_saying_the_format(tmp_path: Path) -> None:
    import os
    import subprocess

    from pipelines.settings import PROJECT_ROOT

    warehouse = tmp_path / "warehouse"
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--as-of", "yesterday",
         "--extracts", str(tmp_path), "--warehouse", str(warehouse)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, timeout=120,
        env=dict(os.environ),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: --as-of: expected an ISO 8601 date and time, e.g. ")
    assert not warehouse.exists()


def test_the_spark_driver_memory_is_a_jvm_size_and_reaches_the_in_process_driver(
    tmp_path: Path,
) -> None:
    """`spark_driver_memory` (SALES_KPI_SPARK_DRIVER_MEMORY) is the in-process driver's heap:
    Spark's own default 1g, a JVM size or refused, and handed to the `spark` dbt target."""
    from pipelines.spark_build import spark_dbt_environment

    assert Settings().spark_driver_memory == "1g"
    settings = Settings.from_env({"SALES_KPI_SPARK_DRIVER_MEMORY": "3g",
                                  "SALES_KPI_WAREHOUSE_DIR": str(tmp_path)})
    assert settings.spark_driver_memory == "3g"
    assert spark_dbt_environment(settings)["SALES_KPI_SPARK_DRIVER_MEMORY"] == "3g"
    for wrong in ("lots", "3", "0g", "-1g"):
        with pytest.raises(SettingsError, match="spark_driver_memory"):
            Settings.from_env({"SALES_KPI_SPARK_DRIVER_MEMORY": wrong})


@pytest.mark.parametrize("target", ["spark", "spark_connect", "spark_thrift"])
def test_the_spark_builds_threads_are_a_setting_that_every_spark_target_reads(
    tmp_path: Path, target: str
) -> None:
    """`spark_threads` (SALES_KPI_SPARK_THREADS, default 2): how many dbt nodes the Spark build
    runs at once; at least 1; rendered by dbt into every Spark target's `threads`."""
    from pipelines.spark_build import spark_dbt_environment

    assert Settings().spark_threads == 2
    settings = Settings.from_env({"SALES_KPI_SPARK_THREADS": "3",
                                  "SALES_KPI_WAREHOUSE_DIR": str(tmp_path)})
    environment = spark_dbt_environment(settings)
    assert environment["SALES_KPI_SPARK_THREADS"] == "3"
    assert _rendered_target(environment, target)["threads"] == 3
    with pytest.raises(SettingsError, match="spark_threads"):
        Settings.from_env({"SALES_KPI_SPARK_THREADS": "0"})


def test_the_duckdb_builds_threads_are_a_setting_that_the_duckdb_target_reads(
    tmp_path: Path,
) -> None:
    """`duckdb_threads` (SALES_KPI_DUCKDB_THREADS, default 4): how many dbt nodes the DuckDB
    build runs at once; at least 1; rendered by dbt into the DuckDB target's `threads`."""
    from pipelines.dbt_project import dbt_environment_values

    assert Settings().duckdb_threads == 4
    settings = Settings.from_env({"SALES_KPI_DUCKDB_THREADS": "1",
                                  "SALES_KPI_WAREHOUSE_DIR": str(tmp_path)})
    environment = dbt_environment_values(settings)
    assert environment["SALES_KPI_DUCKDB_THREADS"] == "1"
    assert _rendered_target(environment, "warehouse")["threads"] == 1
    with pytest.raises(SettingsError, match="duckdb_threads"):
        Settings.from_env({"SALES_KPI_DUCKDB_THREADS": "0"})


def _rendered_target(environment: dict[str, str], target: str) -> dict[str, object]:
    """dbt target `target` of the project's profile as dbt renders it in `environment`."""
    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    from pipelines.dbt_project import DBT_PROJECT_DIR

    set_invocation_context(environment)  # what dbt's env_var() reads
    _name, rendered = Profile.render_profile(
        read_profile(str(DBT_PROJECT_DIR))["sales_kpi"], "sales_kpi", target,
        ProfileRenderer({}),
    )
    return rendered


def test_the_install_may_name_the_dbt_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SALES_KPI_DBT_EXECUTABLE: the run guard's launcher starts that dbt (a dbt in another
    environment, a wrapper); unset, the dbt installed beside this Python."""
    from pipelines.dbt_project import dbt_executable

    wrapper = tmp_path / "dbt-wrapper"
    wrapper.write_text("#!/bin/sh\nexec dbt \"$@\"\n", encoding="utf-8")
    wrapper.chmod(0o700)
    monkeypatch.setenv(DBT_EXECUTABLE_ENV, str(wrapper))
    assert repr(str(wrapper)) in Path(dbt_executable()).read_text(encoding="utf-8")
    monkeypatch.delenv(DBT_EXECUTABLE_ENV)
    installed = str(installed_dbt())
    assert installed == str(Path(sys.executable).parent / "dbt")
    assert repr(installed) in Path(dbt_executable()).read_text(encoding="utf-8")


@pytest.mark.parametrize("named", ["relative/dbt", "/no/such/dbt", "not executable"])
def test_a_dbt_to_start_that_is_not_an_executable_file_is_refused_in_one_line_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    named: str,
) -> None:
    """Before the warehouse is locked or touched: exit 2 and one line naming the variable."""
    from pipelines.cli import main

    if named == "not executable":
        named = str(tmp_path / "dbt")
        Path(named).write_text("not a program", encoding="utf-8")
    monkeypatch.setenv(DBT_EXECUTABLE_ENV, named)
    with pytest.raises(SettingsError, match=f"{DBT_EXECUTABLE_ENV}: .* is not an executable"):
        chosen_dbt()
    (tmp_path / "landing").mkdir()
    warehouse = tmp_path / "warehouse"
    code = main(["run", "--extracts", str(tmp_path / "landing"), "--warehouse", str(warehouse)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"error: {DBT_EXECUTABLE_ENV}: {named} is not an executable file (an absolute path)"
    ]
    assert not warehouse.exists()


@pytest.mark.parametrize(
    "folder", ["warehouse[prod]", "nightly{1,2}", "what?", "star*", 'the "best"', "a;b"]
)
def test_a_spark_warehouse_whose_path_spark_cannot_take_as_a_name_is_refused(
    tmp_path: Path, folder: str
) -> None:
    """Spark's file system takes `[ ] { } * ?` (and a backslash) in a path as a pattern (the
    Spark build would find no raw layer there), a double quote would end the driver's quoted
    options and a semicolon split Derby's address. Refused before anything runs, naming the
    folder — also when a link leads there; DuckDB has no such limit."""
    warehouse = tmp_path / folder / "warehouse"
    with pytest.raises(SettingsError, match=r"warehouse_dir: .* the Spark engine needs"):
        Settings(warehouse_dir=warehouse, engine="spark")
    warehouse.mkdir(parents=True)
    (tmp_path / "plain").symlink_to(warehouse, target_is_directory=True)
    with pytest.raises(SettingsError, match=r"warehouse_dir: "):
        Settings(warehouse_dir=tmp_path / "plain", engine="spark")
    assert Settings(warehouse_dir=warehouse).engine == "duckdb"
    assert Settings(warehouse_dir=tmp_path / "o'neil's warehouse", engine="spark")


def test_a_run_has_a_time_limit_in_minutes_that_zero_turns_off() -> None:
    """`max_run_minutes` (SALES_KPI_MAX_RUN_MINUTES, default 240): how long a run may take
    before it is stopped (pipelines/run_guard.py); 0 is no limit; a negative or not-a-number
    or infinite limit is refused, naming the setting."""
    assert Settings().run_time_limit_seconds == 240 * 60
    assert Settings.from_env({"SALES_KPI_MAX_RUN_MINUTES": "1.5"}).run_time_limit_seconds == 90
    assert Settings.from_env({"SALES_KPI_MAX_RUN_MINUTES": "0"}).run_time_limit_seconds is None
    for refused in ("-1", "nan", "inf", "1e307"):
        with pytest.raises(SettingsError, match="max_run_minutes"):
            Settings.from_env({"SALES_KPI_MAX_RUN_MINUTES": refused})


def test_a_run_records_the_loaders_thresholds_among_its_effective_settings() -> None:
    """`runs.settings` is the JSON of the effective settings (the marts contract): the share
    of bad rows above which a file is rejected, and the count below which it never is, change
    what reaches the marts, so an auditor must see them next to the definitions' thresholds."""
    settings = Settings.from_env({"SALES_KPI_MAX_BAD_ROW_SHARE": "0.5",
                                  "SALES_KPI_MIN_BAD_ROWS_TO_REJECT": "1000"})
    recorded = settings.run_settings()
    assert recorded["max_bad_row_share"] == 0.5
    assert recorded["min_bad_rows_to_reject"] == 1000
    assert Settings().run_settings()["max_bad_row_share"] == 0.05
    # the loader's thresholds are the contract's, not the definitions': no `+custom`
    assert settings.definition_overrides() == {}


def _closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then let go)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_spark_server_that_cannot_be_reached_is_refused_naming_it() -> None:
    """A Spark Connect URL or a Thrift host nobody answers on: the run is refused in one line
    naming the server (a Connect client waited on a dead port until the run was killed)."""
    import socket

    from pipelines.engines import spark_server_problem

    port = _closed_port()
    connect = Settings(engine="spark", spark_remote=f"sc://127.0.0.1:{port}/;use_ssl=false")
    problem = spark_server_problem(connect)
    assert problem is not None and f"Spark Connect server 127.0.0.1:{port}" in problem
    assert "SALES_KPI_SPARK_REMOTE" in problem
    thrift = Settings(engine="spark", spark_thrift_host="127.0.0.1", spark_thrift_port=port)
    problem = spark_server_problem(thrift)
    assert problem is not None and f"Spark Thrift server 127.0.0.1:{port}" in problem
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        listening = server.getsockname()[1]
        assert spark_server_problem(
            Settings(engine="spark", spark_remote=f"sc://127.0.0.1:{listening}")) is None
        assert spark_server_problem(Settings(
            engine="spark", spark_thrift_host="127.0.0.1", spark_thrift_port=listening)) is None
    assert spark_server_problem(Settings(engine="spark")) is None  # a session: no server
    for malformed in ("sc://127.0.0.1:abc", "sc://127.0.0.1:15002;use_ssl=true", "sc://:15002"):
        problem = spark_server_problem(Settings(engine="spark", spark_remote=malformed))
        assert problem is not None and "names no host and port" in problem, malformed
    problem = spark_server_problem(Settings(engine="spark", spark_remote=f"sc://[::1]:{port}"))
    assert problem is not None and f"Spark Connect server [::1]:{port}" in problem


def test_a_dashboard_language_the_reports_are_not_written_in_is_refused_at_start() -> None:
    """Refused with the settings, before anything runs (it failed the site step, after the
    marts were published)."""
    with pytest.raises(SettingsError, match="dashboard_language: 'de' is not a language"):
        Settings(dashboard_language="de")
    assert Settings(dashboard_language="nl").dashboard_language == "nl"
