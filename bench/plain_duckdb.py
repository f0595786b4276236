"""A plain DuckDB reference run of the same definitions over the same extract files.

One process, one DuckDB connection, no Dagster, no dbt, no checks, no publication: the
bench harness (run_bench.py --compare N) times it side by side with `sales-kpi run` to see
what the pipeline costs beyond the arithmetic of the definitions.

    python bench/plain_duckdb.py EXTRACTS OUT_DIR MODELS_DIR

- **Load**: every landing file (delivery folders in name order; csv, csv.gz, parquet, jsonl,
  xlsx) read with DuckDB's own readers, typed in one `insert … select` per file with the
  contract's types (pipelines/contract.py is data: entity, column, type), a row whose
  required value is empty or unparsable dropped. No quarantine table, no manifest, no
  hashing: that is the pipeline's bookkeeping, not the definitions'.
- **Transform**: the definitions are the dbt models; this script runs their compiled SQL
  (`compiled_code` of the manifest dbt wrote for a build of the same project, MODELS_DIR) as
  `create table … as` in dependency order, with the seeds loaded from their CSV files at the
  types their config declares. Thresholds are therefore the dbt vars of that build (the
  defaults of dbt_project.yml unless the build was given others). No data tests.

So the reference is the lower bound of *this* SQL run in plain DuckDB; an independent
hand-written implementation may be faster or slower in its transform (see bench/README.md).
Writes OUT_DIR/warehouse.duckdb (the database must be named `warehouse`, as the compiled SQL
names it) and prints a JSON line with the load and transform seconds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.contract import ENTITIES, Column  # noqa: E402  (data only: names and types)

TYPES = {
    "string": "varchar", "enum": "varchar", "boolean": "boolean", "timestamp": "timestamptz",
    "integer": "bigint", "month": "varchar",
}
EXTENSIONS = ("csv.gz", "csv", "parquet", "jsonl", "xlsx")


def sql_type(column: Column) -> str:
    if column.type == "decimal":
        return "double" if column.exclusive_minimum else "decimal(18, 2)"
    return TYPES[column.type]


def typed(column: Column, source: set[str]) -> str:
    """The column's typed value from the file's text (NULL when absent or unparsable)."""
    if column.name not in source:
        text = "cast(null as varchar)"
    else:
        text = f"nullif(trim(cast(\"{column.name}\" as varchar)), '')"
    if column.default is not None:
        text = f"coalesce({text}, '{column.default}')"
    if column.upper:
        text = f"upper({text})"
    if column.type == "enum":
        return f"lower({text})"
    if column.type == "boolean":
        return (f"case when lower({text}) in ('true','1','yes','y') then true "
                f"when lower({text}) in ('false','0','no','n') then false end")
    if column.type == "timestamp":
        # the session's TimeZone is the business timezone: a naive text is local time
        return f"try_cast(upper(replace({text}, ',', '.')) as timestamptz)"
    if column.type in ("string", "month"):
        return text
    return f"try_cast({text} as {sql_type(column)})"


def reader(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return (f"(select *, ordinality + 1 as _line from read_csv('{path}', header = true, "
                f"all_varchar = true) with ordinality)")
    if name.endswith(".parquet"):
        return f"(select *, file_row_number + 2 as _line from read_parquet('{path}', " \
               f"file_row_number = true))"
    if name.endswith(".jsonl"):
        return (f"(select *, ordinality + 1 as _line from read_json('{path}', "
                f"format = 'newline_delimited') with ordinality)")
    raise ValueError(path)


def load(con: duckdb.DuckDBPyConnection, extracts: Path) -> None:
    con.execute("create schema raw")
    for entity in ENTITIES.values():
        columns = ", ".join(f'"{c.name}" {sql_type(c)}' for c in entity.columns)
        con.execute(f"create table raw.{entity.name} ({columns}, _load_id bigint, "
                    "_delivery varchar, _file varchar, _line bigint)")
    con.execute("create table raw.target_overrides (kpi_id varchar, scope varchar, "
                "scope_id varchar, period_start date, target double, source_file varchar, "
                "source_line bigint)")
    load_id = 0
    for delivery in sorted(p for p in extracts.iterdir() if p.is_dir()):
        for path in sorted(delivery.iterdir()):
            name = path.name.lower()
            entity_name = next((name[: -len(e) - 1] for e in EXTENSIONS
                                if name.endswith("." + e)), None)
            if entity_name not in ENTITIES:
                continue
            entity, load_id = ENTITIES[entity_name], load_id + 1
            if name.endswith(".xlsx"):
                import pandas as pd

                frame = pd.read_excel(path, dtype=str)
                frame["_line"] = range(2, len(frame) + 2)
                source = "frame"
            else:
                source = reader(path)
            present = {c.lower() for c in con.execute(f"describe select * from {source}")
                       .fetchall() for c in [c[0]]}
            values = [f'{typed(c, present)} as "{c.name}"' for c in entity.columns]
            required = [f'"{c.name}" is not null' for c in entity.columns if c.required]
            con.execute(
                f"insert into raw.{entity.name} select * from ("
                f"select {', '.join(values)}, {load_id}, '{delivery.name}', '{path.name}', "
                f"_line from {source}) where {' and '.join(required) or 'true'}"
            )


def transform(con: duckdb.DuckDBPyConnection, models_dir: Path) -> list[str]:
    """Seeds, then every non-ephemeral model of the build's manifest, parents first."""
    manifest = json.loads((models_dir / "manifest.json").read_text())
    nodes = manifest["nodes"]
    for node in nodes.values():
        if node["resource_type"] == "seed":
            types = node["config"].get("column_types") or {}
            columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in types.items()) + "}"
            path = ROOT / "dbt_project" / node["original_file_path"]
            con.execute(f"create schema if not exists {node['schema']}")
            con.execute(f"create table {node['relation_name']} as select * from "
                        f"read_csv('{path}', header = true, types = {columns})")
    done: set[str] = set()
    order: list[str] = []

    def visit(uid: str) -> None:
        if uid in done or uid not in nodes or nodes[uid]["resource_type"] != "model":
            return
        done.add(uid)
        for parent in nodes[uid]["depends_on"]["nodes"]:
            visit(parent)
        order.append(uid)

    for uid in sorted(nodes):
        visit(uid)
    built = []
    for uid in order:
        node = nodes[uid]
        if node["config"]["materialized"] == "ephemeral":
            continue  # inlined as a CTE in the compiled SQL of its children
        con.execute(f"create schema if not exists {node['schema']}")
        kind = "view" if node["config"]["materialized"] == "view" else "table"
        con.execute(f"create {kind} {node['relation_name']} as {node['compiled_code']}")
        built.append(node["name"])
    return built


def main(extracts: str, out_dir: str, models_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    database = out / "warehouse.duckdb"
    database.unlink(missing_ok=True)
    started = time.perf_counter()
    con = duckdb.connect(str(database), config={"memory_limit": "4GB"})
    # the definitions' timezone, from its one home (dbt_project.yml vars)
    business_timezone = yaml.safe_load((ROOT / "dbt_project" / "dbt_project.yml").read_text())[
        "vars"]["business_timezone"]
    con.execute(f"set TimeZone = '{business_timezone}'")
    load(con, Path(extracts))
    loaded = time.perf_counter()
    built = transform(con, Path(models_dir))
    con.close()
    finished = time.perf_counter()
    print(json.dumps({"load_seconds": round(loaded - started, 3),
                      "transform_seconds": round(finished - loaded, 3),
                      "models": len(built)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
