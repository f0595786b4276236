"""dbt for the tests, forked from a warm process instead of started as a new interpreter.

Every run of the job starts dbt at least once (the build; a parse for a fresh warehouse with
other settings; `dbt docs generate` for the site), and a dbt started as a new interpreter
spends ≈ 4 of the ≈ 14 CPU-s of a build of the sample importing dbt, its adapter, agate and
Jinja before it reads the project. Here one process per test worker (the *warm dbt*,
tests/warm_fork.py) imports them once; the job is pointed at it through the install's choice
of dbt (SALES_KPI_DBT_EXECUTABLE, pipelines/settings.py), a small stand-in (`dbt` in the warm
process's folder) that the run guard's launcher starts as it starts dbt: the stand-in sends its
arguments, environment, working folder, stdin/stdout/stderr and the signals it ignores to the
warm dbt, which forks a dbt that runs `dbt.cli.main.cli()` as the console script would. The
stand-in passes SIGINT, SIGTERM, SIGHUP and SIGQUIT on to that dbt and ends as it ends (exit
code, or the same signal); when the stand-in is killed (the launcher's PR_SET_PDEATHSIG when
its run dies) the warm dbt kills the dbt it forked — a moment later, not before the kill
returns — and a forked dbt dies with the warm dbt. Without a warm dbt (not started, or gone
before it forked) the stand-in runs the real dbt in its place.

Before it forks any dbt, the warm dbt runs one small build of its own (`warm_up`): the first
build in a process pays for what dbt and its libraries generate on first use and then keep
(mashumaro's readers and writers of the manifest and the run results, the JSON schemas that
check the project and profile, the macros' compiled templates) — ≈ 2 of the ≈ 10 CPU-s of
every build of the sample forked without it (2026-12-06, builds through the stand-ins of two
warm dbts, with and without it, taken in turn: medians 10.4 and 8.1 CPU-s). What dbt keeps of
that build and a new dbt would not have (its DuckDB database and adapter, the resource
tracker its adapter starts, deprecations and warn-once messages already shown, metadata
variables) is dropped before the first fork. Requests made during the warm-up wait for it; if
it fails, the warm dbt ends, those stand-ins and later ones run the real dbt, and the
session's teardown fails, saying why.

What a fork cannot take from the stand-in: what dbt and the modules imported here read once
at import (babel's locale, `TZ`, `DBT_PACKAGE_HUB_URL`, the hash seed — one for every fork),
the process group, umask and limits: those of the test worker that started the warm dbt,
which are the stand-in's too in this suite.

The real dbt runs where the process tree is what is tested or dbt must see what an install
sees (`real_dbt`): the runs the run guard's tests stop and kill, the parse ahead that is
stopped, the session's shared cold run and the read-only install's run (conftest.py
`_cli_process`), the warm CLI's own comparison with a cold run, and every test of a session
that runs Spark tests (conftest.py `warm_dbt`: a Spark build's dbt hosts Spark's driver, whose
JVM those tests look for under the run; its cost is Spark's).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from warm_fork import WarmProcess, serve

from pipelines.dbt_ahead import BUILD_IMPORTS
from pipelines.settings import DBT_EXECUTABLE_ENV, installed_dbt

# What a dbt build, test, parse and docs generate import (dbt imports lazily, by command):
# imported here once, so that no forked dbt imports them again (a build's, as the run's dbt
# started ahead imports them: pipelines/dbt_ahead.py)
PRELOAD = (*BUILD_IMPORTS, "dbt.task.docs.generate")
# Set this to anything to run the suite with the real dbt everywhere (to compare, or to rule
# the warm dbt out)
COLD_DBT_ENV = "SALES_KPI_TEST_COLD_DBT"
# The signals the stand-in passes on to its dbt
PASSED_ON = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")

_CLIENT = '''#!{python} -IS
"""dbt forked from a test worker's warm dbt (tests/warm_dbt.py); the real dbt without it."""
import json, os, signal, socket, sys

PASSED_ON = [getattr(signal, name) for name in {passed_on!r}]
# what this process ignores, its dbt ignores too (as a dbt started in its place would)
ignored = [s for s in PASSED_ON if signal.getsignal(s) == signal.SIG_IGN]
pid, pending = None, []


def pass_on(signum, frame):
    if pid is None:
        pending.append(signum)  # its dbt is being forked: passed on once it is
        return
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try:
    connection.connect({address!r})
    request = {{"args": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd(),
               "ignored": [int(s) for s in ignored]}}
    socket.send_fds(connection, [json.dumps(request).encode()], [0, 1, 2])
except OSError:  # no warm dbt: the real one, in this process's place
    connection.close()
    os.execv({real!r}, [{real!r}, *sys.argv[1:]])
for signum in PASSED_ON:
    if signum not in ignored:
        signal.signal(signum, pass_on)
reply = connection.recv(64).decode().split()
if len(reply) != 2 or reply[0] != "pid":  # it ended before it forked (its warm-up failed):
    connection.close()                      # no dbt ran
    for signum in pending:  # a stop that came meanwhile ends this one as it would have its dbt
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    os.execv({real!r}, [{real!r}, *sys.argv[1:]])  # the real one, in this one's place
pid = int(reply[1])
for signum in pending:
    pass_on(signum, None)
reply = connection.recv(64).decode().split()
if len(reply) != 2 or reply[0] != "exit":
    sys.exit(f"the warm dbt ended before its dbt {{pid}} did")
code = int(reply[1])
if code < 0:  # ended by a signal: so does this stand-in
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
'''


class WarmDbt:
    """A warm dbt and its stand-in (`client`), ended by close() or with this process."""

    def __init__(self) -> None:
        self._warm = WarmProcess(Path(__file__), "sales-kpi-warm-dbt-")
        # a stand-in that found no socket would run the real dbt
        self._warm.wait_listening()
        self.pid = self._warm.pid
        self.client = stand_in(self._warm.folder / "dbt", self._warm.address)

    def forked(self) -> list[int]:
        """The pids of the dbt processes forked from here that are still running."""
        import psutil

        try:
            return [child.pid for child in psutil.Process(self.pid).children()
                    if child.status() != psutil.STATUS_ZOMBIE]
        except psutil.NoSuchProcess:
            return []

    def ended(self) -> str | None:
        """Why the warm dbt is no longer running (its exit code and output), None while it is."""
        return None if self._warm.poll() is None else self._warm.failure()

    def close(self) -> None:
        self._warm.close()


def stand_in(path: Path, address: str) -> Path:
    """A dbt stand-in at `path` that asks the warm dbt at `address` to fork its dbt."""
    path.write_text(
        _CLIENT.format(python=sys.executable, address=address, real=str(installed_dbt()),
                       passed_on=PASSED_ON),
        encoding="utf-8",
    )
    path.chmod(0o700)
    return path


def start_warm_dbt() -> WarmDbt | None:
    """Start this worker's warm dbt and name its stand-in as the install's dbt in this
    process's environment, which every run of the session inherits. None, and nothing
    changed, with COLD_DBT_ENV set or where the environment already names a dbt (an
    operator's own: the suite runs it)."""
    if os.environ.get(COLD_DBT_ENV) or os.environ.get(DBT_EXECUTABLE_ENV):
        return None
    warm = WarmDbt()
    os.environ[DBT_EXECUTABLE_ENV] = str(warm.client)
    return warm


def stop_warm_dbt(warm: WarmDbt) -> None:
    """End the warm dbt started by start_warm_dbt and stop naming its stand-in. A warm dbt
    that ended on its own (its warm-up failed, it crashed) is an error: its stand-in ran the
    real dbt meanwhile, and the session would not say so."""
    if os.environ.get(DBT_EXECUTABLE_ENV) == str(warm.client):
        del os.environ[DBT_EXECUTABLE_ENV]
    ended = warm.ended()
    warm.close()
    if ended:
        raise RuntimeError(f"the warm dbt ended before the session did: {ended}")


def real_dbt(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for a run that starts the real dbt (the install's own)."""
    return {name: value for name, value in env.items() if name != DBT_EXECUTABLE_ENV}


def warm_up(folder: Path) -> None:
    """A build in this process, as the job starts one (the default settings' vars and profile
    environment, the install's parse state, JSON log lines as dagster-dbt asks for, in the
    warehouse folder), of the nodes that need no raw data — every node not downstream of a
    source: the seeds and the models built from them alone, with their tests — into a DuckDB
    file of its own under `folder`. Afterwards nothing of it is left that a fork would
    inherit and a new dbt would not have: no DuckDB database (nor its threads), no adapter,
    no multiprocessing resource tracker (dbt's adapter starts one: each forked dbt starts its
    own, as a new dbt does), no deprecation or warn-once message marked as already shown, no
    metadata variables read, the environment and working folder as they were."""
    from dbt.cli.main import dbtRunner

    from pipelines.dbt_project import (
        dbt_cli_environment,
        dbt_vars,
        install_parse_serves,
        reuse_partial_parse,
    )
    from pipelines.settings import Settings

    settings = Settings(warehouse_dir=folder / "warm-up")
    target = settings.warehouse_dir / "target"
    settings.warehouse_dir.mkdir(parents=True)
    if (state := install_parse_serves(settings)) is not None:
        reuse_partial_parse(state.parent, target)
    environment, cwd = dict(os.environ), os.getcwd()
    os.environ.update({**dbt_cli_environment(settings, target), "DBT_LOG_FORMAT": "json"})
    os.chdir(settings.warehouse_dir)
    try:
        result = dbtRunner().invoke([
            "build", "--vars", json.dumps(dbt_vars(settings)),
            "--exclude", "source:*+", "test_type:unit", "--indirect-selection", "cautious",
        ])
    finally:
        _forget_the_warm_up()
        os.environ.clear()
        os.environ.update(environment)
        os.chdir(cwd)
    if not result.success:
        raise SystemExit(f"warm dbt: its warm-up build failed ({result.exception or 'a node'}):"
                         " see the dbt lines above")


def _forget_the_warm_up() -> None:
    """What dbt keeps per process after a build and a new dbt would not have (warm_up)."""
    from multiprocessing import resource_tracker

    from dbt import deprecations
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.adapters.factory import reset_adapters
    from dbt_common.events.functions import reset_metadata_vars

    if DuckDBConnectionManager._ENV is not None:
        DuckDBConnectionManager._ENV.close()
        DuckDBConnectionManager._ENV = None
    DuckDBConnectionManager._LOGGED_MESSAGES.clear()
    reset_adapters()
    deprecations.reset_deprecations()
    deprecations.buffered_deprecations.clear()
    reset_metadata_vars()
    gc.collect()  # the adapter's lock goes: its semaphore is no longer tracked
    resource_tracker._resource_tracker._stop()


def main() -> None:
    """`python warm_dbt.py ADDRESS PARENT_PID`: the warm process (tests/warm_fork.py); each
    fork is dbt, run as its console script runs it."""
    sys.path[0] = str(installed_dbt().parent)  # as for the console script: its folder first
    folder = Path(sys.argv[1]).parent
    passed_on = [getattr(signal, name) for name in PASSED_ON]
    request = serve(sys.argv[1], int(sys.argv[2]), PRELOAD, end_abandoned=True,
                    warm_up=lambda: warm_up(folder), held=passed_on)
    sys.argv = [str(installed_dbt()), *request["args"]]
    # the signals as a new interpreter started by the stand-in would have them: ignored where
    # the stand-in ignores them, else Python's defaults (SIGINT: KeyboardInterrupt); one the
    # stand-in passed on meanwhile is delivered when they are unblocked
    for number in passed_on:
        default = signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL
        signal.signal(number, signal.SIG_IGN if number in request["ignored"] else default)
    signal.pthread_sigmask(signal.SIG_SETMASK, request.pop("signal_mask"))
    from dbt.cli.main import cli

    raise SystemExit(cli())


if __name__ == "__main__":
    main()
