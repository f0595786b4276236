{#- Instants, local wall time and calendar arithmetic on both engines (README, "Engines").
    An instant is DuckDB's `timestamptz` / Spark's `timestamp` (a point on the UTC line; the
    Spark session's timezone is pinned to UTC in profiles.yml so it never shows in results).
    Local wall time is a naive timestamp: DuckDB `timestamp`, Spark `timestamp_ntz`. -#}

{#- The session's timezone, pinned to UTC for the whole build (an `on-run-start` hook): DuckDB
    takes the machine's (TZ) by default, and it shows wherever an instant becomes text (the
    md5 of dim_leads.inputs_fingerprint) or a text without an offset becomes an instant (an
    `as_of` var given by hand). `set global`: every cursor dbt-duckdb opens shares it, for one
    statement per build (as a profile `settings` entry it would run on every node's cursor).
    Spark's session timezone is pinned in profiles.yml. -#}
{% macro pin_session_timezone() -%}
    {{ return(adapter.dispatch('pin_session_timezone')()) }}
{%- endmacro %}

{% macro duckdb__pin_session_timezone() -%}
    set global TimeZone = 'UTC'
{%- endmacro %}

{% macro spark__pin_session_timezone() -%}
{%- endmacro %}

{#- The wall-clock time in `tz` of an instant (DST included). -#}
{% macro utc_to_local(instant, tz) -%}
    {{ return(adapter.dispatch('utc_to_local')(instant, tz)) }}
{%- endmacro %}

{% macro duckdb__utc_to_local(instant, tz) -%}
    timezone('{{ tz }}', {{ instant }})
{%- endmacro %}

{% macro spark__utc_to_local(instant, tz) -%}
    convert_timezone('UTC', '{{ tz }}', cast({{ instant }} as timestamp_ntz))
{%- endmacro %}

{#- A date `days` calendar days after a date (a DATE). -#}
{% macro add_days(day, days) -%}
    {{ return(adapter.dispatch('add_days')(day, days)) }}
{%- endmacro %}

{% macro duckdb__add_days(day, days) -%}
    cast({{ day }} + to_days(cast({{ days }} as integer)) as date)
{%- endmacro %}

{% macro spark__add_days(day, days) -%}
    date_add({{ day }}, cast({{ days }} as integer))
{%- endmacro %}

{#- A date `months` calendar months after a date (a DATE; the day clipped to the month's end). -#}
{% macro add_months(day, months) -%}
    {{ return(adapter.dispatch('add_months')(day, months)) }}
{%- endmacro %}

{% macro duckdb__add_months(day, months) -%}
    cast({{ day }} + to_months(cast({{ months }} as integer)) as date)
{%- endmacro %}

{% macro spark__add_months(day, months) -%}
    add_months({{ day }}, cast({{ months }} as integer))
{%- endmacro %}

{#- An exact duration of `hours` hours after an instant (never calendar days: a DST night
    has 23 or 25 hours). -#}
{% macro add_hours(instant, hours) -%}
    {{ return(adapter.dispatch('add_hours')(instant, hours)) }}
{%- endmacro %}

{% macro duckdb__add_hours(instant, hours) -%}
    {{ instant }} + to_hours(cast({{ hours }} as bigint))
{%- endmacro %}

{% macro spark__add_hours(instant, hours) -%}
    timestampadd(HOUR, cast({{ hours }} as bigint), {{ instant }})
{%- endmacro %}

{#- A FROM-clause item (after a comma) giving one row `alias(column)` per period start from
    `start_date` to `end_date` (DATEs, both included), a week (7 days) or a calendar month
    apart as `grain` ('week' or 'month', an expression) says. -#}
{% macro period_starts_between(start_date, end_date, grain, alias, column) -%}
    {{ return(adapter.dispatch('period_starts_between')(start_date, end_date, grain, alias, column)) }}
{%- endmacro %}

{% macro duckdb__period_starts_between(start_date, end_date, grain, alias, column) -%}
    unnest(
        generate_series(
            cast({{ start_date }} as timestamp),
            cast({{ end_date }} as timestamp),
            case when {{ grain }} = 'week' then interval 7 day else interval 1 month end
        )
    ) as {{ alias }} ({{ column }})
{%- endmacro %}

{% macro spark__period_starts_between(start_date, end_date, grain, alias, column) -%}
    {#- Spark's sequence takes one interval type per call: a week is a day-time interval, a
        month a year-month one, so the CASE chooses between two sequences. A start after the
        end is no period, as DuckDB's generate_series has it (Spark's sequence raises
        "Illegal sequence boundaries" instead). -#}
    lateral explode(
        case
            when cast({{ start_date }} as date) > cast({{ end_date }} as date)
                then cast(array() as array<date>)
            when {{ grain }} = 'week'
                then sequence(cast({{ start_date }} as date), cast({{ end_date }} as date), interval 7 day)
            else sequence(cast({{ start_date }} as date), cast({{ end_date }} as date), interval 1 month)
        end
    ) as {{ alias }} ({{ column }})
{%- endmacro %}

{#- One row `date_day` (a DATE) per calendar day from `start_date` (included) to `end_date`
    (excluded), as dbt's date_spine counts them. dbt's portable date_spine builds its days
    from a cross join of sixteen two-row relations, which Spark plans and runs as a job of
    its own (≈ 9 s of a sample's build); both engines have a series function. -#}
{% macro day_spine(start_date, end_date) -%}
    {{ return(adapter.dispatch('day_spine')(start_date, end_date)) }}
{%- endmacro %}

{% macro duckdb__day_spine(start_date, end_date) -%}
    select cast(unnest(generate_series(
        cast({{ start_date }} as timestamp),
        cast({{ end_date }} as timestamp) - interval 1 day,
        interval 1 day
    )) as date) as date_day
{%- endmacro %}

{% macro spark__day_spine(start_date, end_date) -%}
    select explode(sequence(
        cast({{ start_date }} as date), date_sub(cast({{ end_date }} as date), 1), interval 1 day
    )) as date_day
{%- endmacro %}

{#- An engine's time-zone rules are its own copy of the IANA database: DuckDB's ICU, Spark's
    the JVM's, which is often older (Java 17's 2025a still had British Columbia change to UTC−8
    in November 2026, where IANA 2026f keeps UTC−7): weeks and months of the same instants
    would differ between the engines. The nightly job's Spark build checks its engine first
    (an `on-run-start` hook; a no-op unless the var `time_zone_probes` is given, as
    pipelines/spark_build.py gives it): the Parquet file `path` holds instants (`instant`,
    seconds since 1970) and the wall time DuckDB's rules give each in the business timezone
    (`local_time`, pipelines/local_time.py); a build whose engine puts one elsewhere stops
    before anything is built, naming the first and the rules to bring the engine up to. -#}
{% macro time_zone_rules_from_var() -%}
    {% set probes = var('time_zone_probes', none) %}
    {% if execute and probes %}
        {% set tz = var('business_timezone') %}
        {% set found = run_query(time_zone_probes_differing(probes.path, tz)) %}
        {% if found.rows | length > 0 %}
            {% set first = found.rows[0] %}
            {% do exceptions.raise_compiler_error(
                "this engine's time-zone rules put " ~ first['differing'] ~ " of "
                ~ first['probes'] ~ " instants in another local time than DuckDB's ("
                ~ probes.rules ~ ") in " ~ tz ~ ": " ~ first['instant_utc']
                ~ " UTC is " ~ first['engine_time'] ~ " here and " ~ first['local_time']
                ~ " by those rules, so weeks and months would differ between the engines. "
                ~ "Bring the engine's time-zone data up to " ~ probes.rules
                ~ " (for Spark the JVM's: a newer Java build, or Oracle's TZUpdater), "
                ~ "or run on DuckDB"
            ) %}
        {% endif %}
    {% endif %}
{%- endmacro %}

{#- The probes of `path` (see above) whose wall time in `tz` this engine gives otherwise: the
    first of them by instant, with how many there are of them and of all probes (no row when
    all agree). -#}
{% macro time_zone_probes_differing(path, tz) -%}
    with probes as (
        {{ time_zone_probe_times(path, tz) }}
    )

    select
        count(*) over () as differing,
        (select count(*) from probes) as probes,
        instant_utc,
        engine_time,
        local_time
    from probes
    where engine_time is distinct from local_time
    order by instant
    limit 1
{%- endmacro %}

{#- Each probe of the file `path` with its instant and this engine's wall time for it in `tz`,
    both as `YYYY-MM-DD HH:MM:SS` text (`instant_utc`, `engine_time`). -#}
{% macro time_zone_probe_times(path, tz) -%}
    {{ return(adapter.dispatch('time_zone_probe_times')(path, tz)) }}
{%- endmacro %}

{% macro duckdb__time_zone_probe_times(path, tz) -%}
    select
        instant,
        local_time,
        strftime({{ utc_to_local('to_timestamp(instant)', tz) }}, '%Y-%m-%d %H:%M:%S')
            as engine_time,
        strftime(to_timestamp(instant) at time zone 'UTC', '%Y-%m-%d %H:%M:%S') as instant_utc
    from read_parquet('{{ path | replace("'", "''") }}')
{%- endmacro %}

{% macro spark__time_zone_probe_times(path, tz) -%}
    select
        instant,
        local_time,
        date_format({{ utc_to_local('timestamp_seconds(instant)', tz) }}, 'yyyy-MM-dd HH:mm:ss')
            as engine_time,
        date_format(cast(timestamp_seconds(instant) as timestamp_ntz), 'yyyy-MM-dd HH:mm:ss')
            as instant_utc
    from parquet.`{{ path | replace("`", "``") }}`
{%- endmacro %}
