{#- Type names that differ between the engines (README, "Engines"). Text is dbt's own
    dbt.type_string(); an instant is DuckDB's `timestamptz`, Spark's `timestamp` (which is
    an instant, shown in the session timezone, pinned to UTC). -#}
{% macro type_instant() -%}
    {{ return(adapter.dispatch('type_instant')()) }}
{%- endmacro %}

{% macro duckdb__type_instant() -%}
    timestamptz
{%- endmacro %}

{% macro spark__type_instant() -%}
    timestamp
{%- endmacro %}

{#- Model contracts (marts YAML) name DuckDB's types; on Spark the contract check casts NULL
    to each declared type, so the two DuckDB-only names are read as their Spark equivalents
    there. Every other declared type (bigint, integer, double, boolean, date, decimal(p,s))
    is the same word on both engines. -#}
{% macro spark__get_empty_schema_sql(columns) -%}
    {%- set spark_columns = {} -%}
    {%- for name in columns -%}
        {%- set column = {} -%}
        {%- do column.update(columns[name]) -%}
        {%- set declared = (column['data_type'] or '') | trim | lower -%}
        {%- if declared in ('varchar', 'text') -%}
            {%- do column.update({'data_type': 'string'}) -%}
        {%- elif declared in ('timestamptz', 'timestamp with time zone') -%}
            {%- do column.update({'data_type': 'timestamp'}) -%}
        {%- endif -%}
        {%- do spark_columns.update({name: column}) -%}
    {%- endfor -%}
    {{ return(default__get_empty_schema_sql(spark_columns)) }}
{%- endmacro %}
