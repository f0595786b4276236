{#- The version of the agreed definitions a row was classified under: the latest changelog
    entry, with `+custom` when the run's thresholds differ from the version's defaults. -#}
{% macro definitions_version() -%}
    (
        select version || {% if var('definitions_custom') %}'+custom'{% else %}''{% endif %}
        from {{ ref('definitions_changelog') }}
        order by valid_from desc, version desc
        limit 1
    )
{%- endmacro %}
