{#- Case mapping of text, the same on both engines (README, "Engines"): Unicode's default
    (full) case mapping, as Python's str.lower/str.upper and Java's do it, but for the one
    mapping that depends on context: a Greek capital Σ lowers to σ wherever it stands (Java
    and Python make a word-final ς; DuckDB does not, and Spark is given σ to lower). Spark's
    `lower` and `upper` are Java's — in the JVM's locale, which profiles.yml pins to English
    for the session's driver and executors (in a Turkish locale "IBM.DÉ" lowers to "ıbm.dé": a
    dotless ı). DuckDB's map one character to one character, so the expansions text here can
    meet are spelled out: İ (U+0130) lowers to i + U+0307 (DuckDB: a plain i, which made
    "GMAİL.COM" the free-mail "gmail.com" on DuckDB alone) — the only unconditional one of
    lower case —, and ß uppercases to SS (DuckDB: ẞ). Left as each engine has it: upper
    case's rarer expansions (the ligatures ﬁ, ﬂ …, ŉ, ǰ, Greek letters with a subscript iota:
    Java expands them, DuckDB leaves them) — no e-mail domain or country name meets them —
    and letters newer than an engine's Unicode tables (Unicode 16's U+A7CB, U+1C89 …: mapped
    by a JVM of Java 24 or later, left by DuckDB 2.0's tables). -#}

{#- `text` in lower case. -#}
{% macro lower_text(text) -%}
    {{ return(adapter.dispatch('lower_text')(text)) }}
{%- endmacro %}

{% macro duckdb__lower_text(text) -%}
    lower(replace({{ text }}, 'İ', 'i̇'))
{%- endmacro %}

{#- Spark: a capital Σ made σ first, so Java's word-final ς (context-dependent) never comes
    of lowering; DuckDB lowers Σ to σ wherever it stands. A ς written as such stays on both. -#}
{% macro spark__lower_text(text) -%}
    lower(replace({{ text }}, 'Σ', 'σ'))
{%- endmacro %}

{#- `text` in upper case. -#}
{% macro upper_text(text) -%}
    {{ return(adapter.dispatch('upper_text')(text)) }}
{%- endmacro %}

{% macro duckdb__upper_text(text) -%}
    upper(replace({{ text }}, 'ß', 'SS'))
{%- endmacro %}

{% macro spark__upper_text(text) -%}
    upper({{ text }})
{%- endmacro %}


{#- `text` without Unicode's space separators at either end (general category Zs: the space,
    the no-break space U+00A0, U+1680, U+2000–U+200A, U+202F, U+205F, the ideographic space
    U+3000), the same on both engines: DuckDB's trim() takes these, Spark's only the space. A
    tab or a line break (Cc), a zero-width space (Cf) stays. -#}
{% macro trim_spaces(text) -%}
    {{ return(adapter.dispatch('trim_spaces')(text)) }}
{%- endmacro %}

{% macro space_separators() -%}
    {{- return("\u0020\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
               ~ "\u2008\u2009\u200a\u202f\u205f\u3000") -}}
{%- endmacro %}

{% macro duckdb__trim_spaces(text) -%}
    trim({{ text }}, '{{ space_separators() }}')
{%- endmacro %}

{% macro spark__trim_spaces(text) -%}
    btrim({{ text }}, '{{ space_separators() }}')
{%- endmacro %}
