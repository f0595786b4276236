{#- Aggregates whose spelling differs between the engines (README, "Engines"). -#}

{#- The `value` of the row with the smallest (`order_by`...) tuple of its group, compared
    left to right — that row's value even when it is empty (DuckDB's plain `arg_min` would
    skip to the next row with a value; Spark's `min_by` does not: hence `arg_min_null`). Give a
    tuple that is unique within the group, so the winner is one row, and of columns that are
    never empty: the engines order an empty member of a tuple differently (DuckDB last,
    Spark first). -#}
{% macro value_at_min(value, order_by) -%}
    {{ return(adapter.dispatch('value_at_min')(value, order_by)) }}
{%- endmacro %}

{% macro duckdb__value_at_min(value, order_by) -%}
    arg_min_null({{ value }}, ({{ order_by | join(', ') }}))
{%- endmacro %}

{% macro spark__value_at_min(value, order_by) -%}
    min_by({{ value }}, struct({{ order_by | join(', ') }}))
{%- endmacro %}

{#- The `value` of the row with the largest (`order_by`...) tuple of its group (as above). -#}
{% macro value_at_max(value, order_by) -%}
    {{ return(adapter.dispatch('value_at_max')(value, order_by)) }}
{%- endmacro %}

{% macro duckdb__value_at_max(value, order_by) -%}
    arg_max_null({{ value }}, ({{ order_by | join(', ') }}))
{%- endmacro %}

{% macro spark__value_at_max(value, order_by) -%}
    max_by({{ value }}, struct({{ order_by | join(', ') }}))
{%- endmacro %}

{#- The group's `measure` texts joined by `delimiter` (a SQL string literal) in the order of
    `order_by` (an ORDER BY list). dbt.listagg cannot order on Spark, hence this pair. -#}
{% macro ordered_string_agg(measure, delimiter, order_by) -%}
    {{ return(adapter.dispatch('ordered_string_agg')(measure, delimiter, order_by)) }}
{%- endmacro %}

{% macro duckdb__ordered_string_agg(measure, delimiter, order_by) -%}
    string_agg({{ measure }}, {{ delimiter }} order by {{ order_by }})
{%- endmacro %}

{% macro spark__ordered_string_agg(measure, delimiter, order_by) -%}
    string_agg({{ measure }}, {{ delimiter }}) within group (order by {{ order_by }})
{%- endmacro %}
