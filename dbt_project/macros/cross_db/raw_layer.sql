{#- The raw layer from Parquet (README, "Engines"): one table per folder `<name>/` of Parquet files in
    `parquet_dir` (the DuckDB raw layer exported by pipelines/engines.py), in schema `raw`,
    so the dbt sources resolve on the engine the run uses. Run it before `dbt build`:
      dbt run-operation raw_layer_from_parquet --args '{parquet_dir: /abs/path, tables: [users, ...]}'
-#}
{% macro raw_layer_from_parquet(parquet_dir, tables) -%}
    {{ return(adapter.dispatch('raw_layer_from_parquet')(parquet_dir, tables)) }}
{%- endmacro %}

{% macro duckdb__raw_layer_from_parquet(parquet_dir, tables) -%}
    {% do run_query('create schema if not exists raw') %}
    {% for table in tables %}
        {% do run_query(
            "create or replace table raw." ~ table ~ " as select * from read_parquet('"
            ~ (parquet_dir ~ "/" ~ table) | replace("'", "''") ~ "/*.parquet')"
        ) %}
    {% endfor %}
{%- endmacro %}

{% macro spark__raw_layer_from_parquet(parquet_dir, tables) -%}
    {% do run_query('create schema if not exists raw') %}
    {% for table in tables %}
        {% do run_query('drop table if exists raw.' ~ table) %}
        {#- the path inside a Spark SQL string literal: backslashes and quotes escaped -#}
        {% do run_query(
            "create table raw." ~ table ~ " using parquet location '"
            ~ (parquet_dir ~ "/" ~ table) | replace("\\", "\\\\") | replace("'", "\\'") ~ "'"
        ) %}
    {% endfor %}
{%- endmacro %}

{#- The nightly job's Spark build registers the raw layer in its own Spark session (one start
    per build): an `on-run-start` hook that does so when the vars `raw_parquet_dir` and
    `raw_parquet_tables` are given (pipelines/spark_build.py), and nothing otherwise. -#}
{% macro raw_layer_from_var() -%}
    {% if execute and var('raw_parquet_dir', none) %}
        {% do check_spark_tables_dir(var('spark_tables_dir', none)) %}
        {% do raw_layer_from_parquet(var('raw_parquet_dir'), var('raw_parquet_tables')) %}
    {% endif %}
{%- endmacro %}

{#- The job reads a Spark build's tables from `<warehouse>/spark/tables` (the `spark_tables_dir`
    var). In-process the profile sets Spark's warehouse dir there; a Spark Connect or Thrift
    server has its own, fixed when it starts. A server started with another one is refused
    before anything is built, saying what to start it with. -#}
{% macro check_spark_tables_dir(expected) -%}
    {% if expected %}
        {% set shown = run_query('set spark.sql.warehouse.dir').columns[1].values()[0] %}
        {% set actual = shown.replace('file://', '').replace('file:', '').rstrip('/') %}
        {% if actual != expected.rstrip('/') %}
            {% do exceptions.raise_compiler_error(
                "the Spark server's spark.sql.warehouse.dir is " ~ shown ~ ", but this "
                ~ "warehouse's Spark tables are read from " ~ expected ~ ": start the server "
                ~ "with --conf spark.sql.warehouse.dir=" ~ expected ~ " (one server per warehouse)"
            ) %}
        {% endif %}
    {% endif %}
{%- endmacro %}
