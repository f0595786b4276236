{#- Generic test: none of `columns` is ever empty — one scan of the model for all of them.
    It replaces a plain `not_null` test per column (one query and one dbt node each, most of
    a build's test time at scale); a failing row names which of its columns are empty. A
    not_null with its own config (`where`, severity) stays a column test of its own. -#}
{% test not_null_columns(model, columns) %}
select
    concat_ws(', ', {% for column in columns -%}
        case when {{ column }} is null then '{{ column }}' end{{ ", " if not loop.last }}
    {%- endfor %}) as empty_columns
from {{ model }}
where {% for column in columns -%}
    {{ column }} is null{{ " or " if not loop.last }}
{%- endfor %}
{% endtest %}
