"""What every run pays whatever its data: paid beside other work, or not at all.

- The audit's Great Expectations is imported while dbt builds, not at the start of the checks.
- The CLI's process ends without the interpreter's last garbage collection over every object
  of the run.

The imports and the exit are looked at in interpreters of their own: the test session has long
imported GX, and its exit is not the CLI's. A module that takes seconds to import stands in
for GX where only the waiting is tested.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from pipelines.quality.run_checks import audit_module
from pipelines.settings import Settings


def _in_a_new_interpreter(code: str, path: Path | None = None) -> list[str]:
    """What `code` prints, run by a new interpreter (`path` on its module path)."""
    env = {**os.environ, "PYTHONPATH": str(path)} if path is not None else None
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        timeout=120, check=True, env=env,
    ).stdout.split()


def test_a_duckdb_build_has_its_audits_module_imported_ahead(tmp_path: Path) -> None:
    """The module named for a DuckDB build is the one the checks import (GX with it), and
    the import ahead has it imported once waited for."""
    assert audit_module(Settings.from_env({})) == "pipelines.quality.gx_duckdb"
    (tmp_path / "stand_in_audit.py").write_text("IMPORTED = True\n", encoding="utf-8")
    out = _in_a_new_interpreter("""
        import sys
        from pipelines.quality.run_checks import AuditImport
        before = "stand_in_audit" in sys.modules
        AuditImport("stand_in_audit").wait()
        print(before, "stand_in_audit" in sys.modules, "great_expectations" in sys.modules)
    """, tmp_path)
    assert out == ["False", "True", "False"]  # and the checks' names alone import no GX


def test_a_spark_session_audit_imports_nothing_ahead_in_the_run_process() -> None:
    """Its audit runs in a process of its own (pipelines/quality/spark_audit.py)."""
    assert audit_module(Settings.from_env({}).replace(engine="spark")) is None


def test_a_stopped_run_does_not_wait_for_the_audits_import(tmp_path: Path) -> None:
    """A run asked to stop has seconds to wind down and say so (pipelines/run_guard.py): the
    dbt step's wait for the import ahead ends at the stop, the import going on alone."""
    (tmp_path / "slow_audit.py").write_text("import time\ntime.sleep(30)\n", encoding="utf-8")
    out = _in_a_new_interpreter("""
        import os, threading
        from pipelines import run_guard
        from pipelines.quality.run_checks import AuditImport
        seen = {}
        def job():
            importing = AuditImport("slow_audit")
            run_guard._stops[threading.current_thread()] = run_guard.RunInterrupted(15)
            importing.wait()
            seen["still importing"] = importing._thread.is_alive()
        worker = threading.Thread(target=job)
        worker.start()
        worker.join()
        print(seen["still importing"])
        os._exit(0)  # not waiting for the 30 s import at exit
    """, tmp_path)
    assert out == ["True"]


def test_the_cli_process_ends_without_collecting_every_object_of_the_run() -> None:
    """`main` has the exit freeze what is alive (gc.freeze), so the exit's collection,
    which at the end of a run traversed ≈ 600k objects for 1.8 s, finds nothing to look at.
    A process that does not call `main` keeps Python's usual exit."""
    out = _in_a_new_interpreter("""
        import atexit, gc
        from pipelines.cli import main
        atexit._run_exitfuncs()
        untouched = gc.get_freeze_count() == 0
        try:
            main(["--help"])
        except SystemExit:
            pass
        atexit._run_exitfuncs()
        print(untouched, gc.get_freeze_count() > 0)
    """)
    assert out[-2:] == ["True", "True"]
