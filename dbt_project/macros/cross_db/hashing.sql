{#- The content of a staging row as an md5, lineage (which file and line it came from) left
    out: the same record re-delivered unchanged has the same fingerprint. The text hashed is
    each engine's own rendering of the row, so a fingerprint compares runs of one engine
    (the stability check compares a run with the previous run of the same warehouse). -#}
{% macro row_fingerprint() -%}
    {{ return(adapter.dispatch('row_fingerprint')()) }}
{%- endmacro %}

{% macro duckdb__row_fingerprint() -%}
    md5(cast(row(*columns(* exclude (source_delivery, source_file, source_line))) as varchar))
{%- endmacro %}

{% macro spark__row_fingerprint() -%}
    {#- instants to the microsecond, as DuckDB renders them (to_json's default keeps
        milliseconds: a re-delivered row changed below them would count as unchanged) -#}
    md5(to_json(
        struct(* except (source_delivery, source_file, source_line)),
        map('timestampFormat', "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX")
    ))
{%- endmacro %}
