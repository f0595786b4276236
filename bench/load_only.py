"""Time the raw load alone, as the raw assets do it: scan the landing, ensure the raw layer and
load every entity into a fresh DuckDB file. Prints wall and CPU seconds (user + system of this
process: steadier than wall time on a shared machine) in total and per entity, the file hashing
on its own, and the load average before and after.

    python bench/load_only.py EXTRACTS DATABASE [--set=NAME=VALUE ...]

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
from pipelines.ingest.loader import load_entity  # noqa: E402
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
    with warehouse_connection(resource_) as con:
        for option in options:
            if option.startswith("--set="):
                con.execute("set " + option.removeprefix("--set="))
        ensure_raw_layer(con)
        for name in ENTITIES:
            entity_wall, entity_cpu = time.perf_counter(), cpu_seconds()
            result = load_entity(con, name, files, settings)
            per_entity[name] = {
                "wall": round(time.perf_counter() - entity_wall, 2),
                "cpu": round(cpu_seconds() - entity_cpu, 2),
                "rows_loaded": result.rows_loaded,
                "rows_quarantined": result.rows_quarantined,
                "files_rejected": len(result.rejected),
            }
    print(json.dumps({
        "wall": round(time.perf_counter() - wall, 2),
        "cpu": round(cpu_seconds() - cpu, 2),
        "hashing_wall": round(hashing[0], 2),
        "hashing_cpu": round(hashing[1], 2),
        "load_average_before": before,
        "load_average_after": os.getloadavg(),
        "duckdb": duckdb.__version__,
        "per_entity": per_entity,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
