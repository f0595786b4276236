"""What every run pays whatever its data: paid beside other work, or not at all.

- The audit's Great Expectations is imported while dbt builds, not at the start of the checks.
- The CLI's process ends without the interpreter's last garbage collection over every object
  of the run.

Each test runs in an interpreter of its own: the test session has long imported GX, and its
exit is not the CLI's.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _modules_after_import_ahead(engine: str) -> tuple[bool, bool, str | None]:
    """In a new interpreter: (GX imported before, GX imported after `import_audit_ahead`
    has been waited for, the audit module it named)."""
    code = textwrap.dedent(f"""
        import sys
        from pipelines.quality.run_checks import audit_module, import_audit_ahead
        from pipelines.settings import Settings
        settings = Settings.from_env({{}}).replace(engine={engine!r})
        before = "great_expectations" in sys.modules
        import_audit_ahead(settings).wait()
        module = audit_module(settings)
        after = "great_expectations" in sys.modules and (module is None or module in sys.modules)
        print(before, after, module)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    return out[0] == "True", out[1] == "True", None if out[2] == "None" else out[2]


@pytest.mark.slow
def test_a_duckdb_build_has_the_audit_and_gx_imported_ahead() -> None:
    before, after, module = _modules_after_import_ahead("duckdb")
    assert module == "pipelines.quality.gx_duckdb"
    assert not before, "loading the settings and the checks' names must not import GX"
    assert after


def test_a_spark_session_audit_imports_nothing_ahead_in_the_run_process() -> None:
    """Its audit runs in a process of its own (pipelines/quality/spark_audit.py)."""
    before, after, module = _modules_after_import_ahead("spark")
    assert module is None
    assert not before
    assert not after


def test_the_cli_process_ends_without_collecting_every_object_of_the_run() -> None:
    """`main` has the exit freeze what is alive (gc.freeze), so the exit's collection,
    which at the end of a run traversed ≈ 600k objects for 1.8 s, finds nothing to look at.
    A process that does not call `main` keeps Python's usual exit."""
    code = textwrap.dedent("""
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
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out[-2:] == ["True", "True"]


def test_a_stopped_run_does_not_wait_for_the_audits_import() -> None:
    """A run asked to stop has seconds to wind down and say so (pipelines/run_guard.py): the
    dbt step's wait for the import ahead ends at the stop, the import going on alone."""
    code = textwrap.dedent("""
        import threading
        from pipelines import run_guard
        from pipelines.quality.run_checks import import_audit_ahead
        from pipelines.settings import Settings
        seen = {}
        def job():
            importing = import_audit_ahead(Settings.from_env({}))
            run_guard._stops[threading.current_thread()] = run_guard.RunInterrupted(15)
            importing.wait()
            seen["still importing"] = importing._thread.is_alive()
        worker = threading.Thread(target=job)
        worker.start()
        worker.join()
        print(seen["still importing"])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out[-1] == "True"
