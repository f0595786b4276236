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
            ~ parquet_dir ~ "/" ~ table ~ "/*.parquet')"
        ) %}
    {% endfor %}
{%- endmacro %}

{% macro spark__raw_layer_from_parquet(parquet_dir, tables) -%}
    {% do run_query('create schema if not exists raw') %}
    {% for table in tables %}
        {% do run_query('drop table if exists raw.' ~ table) %}
        {% do run_query(
            "create table raw." ~ table ~ " using parquet location '"
            ~ parquet_dir ~ "/" ~ table ~ "'"
        ) %}
    {% endfor %}
{%- endmacro %}
