{#- Schemas are named exactly as configured (staging, intermediate, marts, definitions),
    not prefixed with the target's schema: the marts contract says `marts`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
