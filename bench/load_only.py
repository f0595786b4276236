"""Time the raw load alone, as the raw step does it: scan the landing, ensure the raw layer and
load every entity into a fresh DuckDB file, `load_entities` with the job's number of workers.
Prints wall and CPU seconds (user + system of this process: steadier than wall time on a shared
machine) in total, per entity the seconds of its files and when it finished, the file hashing
on its own, and the load average before and after.

    python bench/load_only.py EXTRACTS DATABASE [--workers=N] [--set=NAME=VALUE ...]

`--workers=1` loads one entity after another (as the job did before 2026-12-05's evening);
`--set` applies a DuckDB setting to the connection first (e.g. `--set=threads=1`).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.contract import ENTITIES  # noqa: E402
from pipelines.ingest.landing import scan_landing  # noqa: E402
from pipelines.ingest.loader import LOAD_WORKERS, EntityLoad, load_entities  # noqa: E402
from pipelines.ingest.raw_layer import ensure_raw_layer  # noqa: E402
from pipelines.resources import warehouse_connection, warehouse_resource  # noqa: E402
from pipelines.settings import Settings  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(extracts: str, database: str, *options: str) -> int:
    db = Path(database)
    db.unlink(missing_ok=True)
    settings = Settings(extracts_dir=Path(extracts), warehouse_dir=db.parent)
    before = os.getloadavg()
    wall, cpu = time.perf_counter(), cpu_seconds()
    files, _notes = scan_landing(settings.landing_dir)
    for file in files:  # the loader's first look at a file; cached on it afterwards
        _ = file.content_hash
    hashing = (time.perf_counter() - wall, cpu_seconds() - cpu)
    # The job's connection (memory limit, session settings), on the named database file.
    resource_ = warehouse_resource(settings).model_copy(update={"database": str(db)})
    per_entity: dict[str, dict[str, float | int]] = {}
    workers = next((int(o.removeprefix("--workers=")) for o in options
                    if o.startswith("--workers=")), LOAD_WORKERS)
    started = time.perf_counter()

    def finished(name: str, result: EntityLoad) -> None:
        per_entity[name] = {
            "seconds": round(sum(o.seconds for o in result.outcomes), 2),
            "finished_at": round(time.perf_counter() - started, 2),
            "rows_loaded": result.rows_loaded,
            "rows_quarantined": result.rows_quarantined,
            "files_rejected": len(result.rejected),
        }

    with warehouse_connection(resource_) as con:
        for option in options:
            if option.startswith("--set="):
                con.execute("set " + option.removeprefix("--set="))
        ensure_raw_layer(con)
        load_entities(con, list(ENTITIES), files, settings, loaded=finished, workers=workers)
    print(json.dumps({
        "wall": round(time.perf_counter() - wall, 2),
        "cpu": round(cpu_seconds() - cpu, 2),
        "hashing_wall": round(hashing[0], 2),
        "hashing_cpu": round(hashing[1], 2),
        "workers": workers,
        "load_average_before": before,
        "load_average_after": os.getloadavg(),
        "duckdb": duckdb.__version__,
        "per_entity": per_entity,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
