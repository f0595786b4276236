{#- Generic test: a table's own rules — columns never empty, columns taking only their agreed
    values, keys naming one row — in one query and one dbt node per model.

    Why one node: every dbt test node costs dbt's per-node overhead (compile, run, result, a
    Dagster asset check) and, at scale, a scan of its own: the sample's build had 122 nodes
    for these rules, 49 now (bench/README.md). Here the row rules share one scan of the table
    and each key is one aggregation of the same query.

    Arguments (all optional):
    - `not_null`: columns that are never empty.
    - `accepted_values`: column → its agreed (text) values; an empty value passes, as in dbt's
      `accepted_values`.
    - `unique`: keys; a key is a column (unique among the rows where it is not empty, as dbt's
      `unique`) or a list of columns (one row per combination, an empty value counting as a
      value of its own). Mind the brackets: `unique: [a, b]` is two keys, `[[a, b]]` one.

    Each failing row names the rule, the offending values and how many rows carry them:
    `not_null (full_name)` | `full_name is empty` | 3;
    `accepted_values (stage)` | `stage = 'lead'` | 2;
    `unique (deal_id, stage, changed_at)` | `deal_id = 'D1', stage = 'won', changed_at = '…'` | 2.

    A test with its own config (`where`, severity) stays a test of its own: its rule holds on
    other rows or with another verdict.

    Portable SQL (DuckDB and Spark): concat, concat_ws, cast to dbt's text type, subqueries,
    union all; a quote in the report is `chr(39)` and an accepted value is quoted by dbt's
    dispatched `escape_single_quotes` (Spark reads `'it''s'` as two literals, `its`).
    The row rules are matched to the offending rows by a cross join with the list
    of rules, so the table is read once on both engines (a CTE read by one branch per rule
    would be read again per branch on Spark, which inlines CTEs). DuckDB's `concat` skips an
    empty argument where Spark's returns empty, so an empty key value is spelled out by a
    `case`. -#}
{% test table_rules(model, not_null=[], accepted_values={}, unique=[]) %}
{#- dbt's count of failures: the rows that break a rule (a row breaking two counts twice), not
    the lines of this report, which groups them -#}
{{ config(fail_calc="coalesce(sum(occurrences), 0)") }}
{%- set text = dbt.type_string() -%}
{%- set row_rules = [] -%}
{%- for column in not_null -%}
    {%- do row_rules.append({
        "rule": "not_null (" ~ column ~ ")",
        "broken": column ~ " is null",
        "detail": "'" ~ column ~ " is empty'",
        "columns": [column]}) -%}
{%- endfor -%}
{%- for column, values in accepted_values.items() -%}
    {%- set quoted = [] -%}
    {%- for value in values -%}
        {%- do quoted.append("'" ~ dbt.escape_single_quotes(value | string) ~ "'") -%}
    {%- endfor -%}
    {%- do row_rules.append({
        "rule": "accepted_values (" ~ column ~ ")",
        "broken": column ~ " not in (" ~ quoted | join(", ") ~ ")",
        "detail": "concat('" ~ column ~ " = ', chr(39), cast(" ~ column ~ " as " ~ text ~ "), chr(39))",
        "columns": [column]}) -%}
{%- endfor -%}
{%- set read = [] -%}
{%- for row_rule in row_rules -%}
    {%- for column in row_rule.columns if column not in read -%}
        {%- do read.append(column) -%}
    {%- endfor -%}
{%- endfor -%}
{%- set branches = [] -%}
{%- if row_rules %}
{%- set row_branch -%}
select rule, detail, count(*) as occurrences
from (
    select
        row_rules.rule,
        case row_rules.rule_number
            {%- for row_rule in row_rules %}
            when {{ loop.index }} then {{ row_rule.detail }}
            {%- endfor %}
        end as detail
    from (
        {#- the rows that break any row rule: one scan of the table #}
        select {{ read | join(", ") }}
        from {{ model }}
        where {% for row_rule in row_rules -%}
            {{ row_rule.broken }}{{ " or " if not loop.last }}
        {%- endfor %}
    ) as broken_rows
    cross join (
        {%- for row_rule in row_rules %}
        select {{ loop.index }} as rule_number, '{{ row_rule.rule }}' as rule
        {{- " union all" if not loop.last }}
        {%- endfor %}
    ) as row_rules
    where case row_rules.rule_number
        {%- for row_rule in row_rules %}
        when {{ loop.index }} then {{ row_rule.broken }}
        {%- endfor %}
    end
) as broken
group by rule, detail
{%- endset -%}
{%- do branches.append(row_branch) -%}
{%- endif -%}
{%- for key in unique -%}
    {%- set columns = [key] if key is string else key -%}
    {%- set values = [] -%}
    {%- for column in columns -%}
        {%- do values.append("case when " ~ column ~ " is null then '" ~ column ~ " is empty' "
            ~ "else concat('" ~ column ~ " = ', chr(39), cast(" ~ column ~ " as " ~ text ~ "), chr(39)) end") -%}
    {%- endfor -%}
    {%- set key_branch -%}
select
    'unique ({{ columns | join(", ") }})' as rule,
    concat_ws(', ', {{ values | join(", ") }}) as detail,
    count(*) as occurrences
from {{ model }}
{%- if key is string %}
where {{ key }} is not null
{%- endif %}
group by {{ columns | join(", ") }}
having count(*) > 1
    {%- endset -%}
    {%- do branches.append(key_branch) -%}
{%- endfor %}
{{ branches | join("\nunion all\n") }}
{% endtest %}
