{#- Case mapping of text, the same on both engines (README, "Engines"): Unicode's default
    (full) case mapping, as Python's str.lower/str.upper and Java's do it. Spark's `lower` and
    `upper` are Java's — in the JVM's locale, which profiles.yml pins to English for the
    session's driver and executors (in a Turkish locale "IBM.DÉ" lowers to "ıbm.dé": a dotless
    ı). DuckDB's map one character to one character, so the expansions text here can meet
    are spelled out: İ (U+0130) lowers to i + U+0307 (DuckDB: a plain i, which made
    "GMAİL.COM" the free-mail "gmail.com" on DuckDB alone) — the only unconditional one of
    lower case —, and ß uppercases to SS (DuckDB: ẞ). Left as each engine has it: a Greek
    word-final Σ lowered (Java ς, DuckDB σ) and upper case's rarer expansions (the ligatures
    ﬁ, ﬂ …, ŉ, ǰ, Greek letters with a subscript iota: Java expands them, DuckDB leaves them)
    — no e-mail domain or country name meets them. -#}

{#- `text` in lower case. -#}
{% macro lower_text(text) -%}
    {{ return(adapter.dispatch('lower_text')(text)) }}
{%- endmacro %}

{% macro duckdb__lower_text(text) -%}
    lower(replace({{ text }}, 'İ', 'i̇'))
{%- endmacro %}

{% macro spark__lower_text(text) -%}
    lower({{ text }})
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
