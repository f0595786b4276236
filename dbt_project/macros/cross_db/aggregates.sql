{#- Aggregates whose spelling differs between the engines (README, "Engines"). -#}

{#- The `value` of the row with the smallest (`order_by`...) tuple of its group, compared
    left to right. Give a tuple that is unique within the group, so the winner is one row. -#}
{% macro value_at_min(value, order_by) -%}
    {{ return(adapter.dispatch('value_at_min')(value, order_by)) }}
{%- endmacro %}

{% macro duckdb__value_at_min(value, order_by) -%}
    arg_min({{ value }}, ({{ order_by | join(', ') }}))
{%- endmacro %}

{% macro spark__value_at_min(value, order_by) -%}
    min_by({{ value }}, struct({{ order_by | join(', ') }}))
{%- endmacro %}

{#- The `value` of the row with the largest (`order_by`...) tuple of its group. -#}
{% macro value_at_max(value, order_by) -%}
    {{ return(adapter.dispatch('value_at_max')(value, order_by)) }}
{%- endmacro %}

{% macro duckdb__value_at_max(value, order_by) -%}
    arg_max({{ value }}, ({{ order_by | join(', ') }}))
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
