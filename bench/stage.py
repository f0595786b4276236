"""One benchmark stage in its own process: run the nightly job, write per-step timings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

# The checkout this script sits in, not whatever `pipelines` the environment has installed
# (an editable install may point at another checkout).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb
from dagster import DagsterInstance

from pipelines.job_runner import run_nightly_job
from pipelines.settings import Settings


def main(extracts: str, warehouse: str, out: str) -> int:
    settings = Settings.from_env(extracts_dir=Path(extracts), warehouse_dir=Path(warehouse))
    with DagsterInstance.ephemeral() as instance:
        outcome = run_nightly_job(settings, log_level="WARNING", instance=instance)
        stats = instance.get_run_step_stats(outcome.run_id)
        # on Spark the dbt step logs this line once the raw layer is exported to Parquet:
        # the export's end, inside the step
        spark_started = next((
            entry.timestamp for entry in instance.all_logs(outcome.run_id)
            if entry.user_message.startswith("dbt build on Spark")
        ), None)
    if not outcome.success:
        print("\n".join(outcome.failures), file=sys.stderr)
        return 1
    with duckdb.connect(str(settings.raw_database), read_only=True) as con:
        rows, files = con.execute(
            "select sum(rows_loaded), count(*) from raw.load_manifest where status = 'loaded'"
        ).fetchone()  # type: ignore[misc]
    steps = {
        s.step_key: round((s.end_time or 0) - (s.start_time or 0), 3)
        for s in sorted(stats, key=lambda s: s.start_time or 0)
    }
    spans = {s.step_key: [s.start_time or 0, s.end_time or 0] for s in stats}
    Path(out).write_text(json.dumps(
        {"rows_loaded": int(rows), "files": files, "steps": steps, "step_spans": spans,
         "spark_build_started": spark_started}
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
