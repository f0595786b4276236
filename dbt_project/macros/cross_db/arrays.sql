{#- Lists written in a model (README, "Engines"). -#}

{#- The 1-based position of `expr` in a list of literal strings `values`, NULL when absent:
    an explicit order of words (stages) that is not alphabetical. -#}
{% macro position_in_list(values, expr) -%}
    {{ return(adapter.dispatch('position_in_list')(values, expr)) }}
{%- endmacro %}

{% macro duckdb__position_in_list(values, expr) -%}
    list_position([{% for v in values %}'{{ v }}'{{ ', ' if not loop.last }}{% endfor %}], {{ expr }})
{%- endmacro %}

{% macro spark__position_in_list(values, expr) -%}
    nullif(array_position(array({% for v in values %}'{{ v }}'{{ ', ' if not loop.last }}{% endfor %}), {{ expr }}), 0)
{%- endmacro %}
