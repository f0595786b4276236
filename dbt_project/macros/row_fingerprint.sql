{#- The content of a staging row as an md5, lineage (which file and line it came from) left
    out: the same record re-delivered unchanged has the same fingerprint. -#}
{% macro row_fingerprint() -%}
    md5(cast(row(*columns(* exclude (source_delivery, source_file, source_line))) as varchar))
{%- endmacro %}
