{#- Generic test: each listed column takes only its agreed values (empty passes, as in dbt's
    `accepted_values`) — one scan of the model for all of them. It replaces a plain
    `accepted_values` test per column (one query and one dbt node each); each failing row
    names the offending columns with their values (`stage = 'lead'`) and how many rows carry
    that combination. An accepted_values with its own config (`where`, severity) or unquoted
    values stays a column test of its own.
    `columns`: a mapping of column name to its list of accepted (text) values. -#}
{% test accepted_values_columns(model, columns) %}
{%- set rejected = {} -%}
{%- for column, values in columns.items() -%}
    {%- set quoted = [] -%}
    {%- for value in values -%}
        {%- do quoted.append("'" ~ (value | string | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {%- do rejected.update({column: column ~ " not in (" ~ quoted | join(", ") ~ ")"}) -%}
{%- endfor %}
select unaccepted_values, count(*) as occurrences
from (
    select
        concat_ws(', ', {% for column, condition in rejected.items() -%}
            case when {{ condition }}
                then concat('{{ column }} = ''', cast({{ column }} as {{ dbt.type_string() }}), '''')
            end{{ ", " if not loop.last }}
        {%- endfor %}) as unaccepted_values
    from {{ model }}
    where {% for condition in rejected.values() -%}
        {{ condition }}{{ " or " if not loop.last }}
    {%- endfor %}
) as offending
group by unaccepted_values
{% endtest %}
