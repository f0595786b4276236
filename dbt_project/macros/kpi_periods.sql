{#- Period helpers for the KPIs (definitions, "Ground rules"): periods are local calendar
    months and ISO weeks in the business timezone; period_start is their first day. -#}

{#- The period_start (a DATE) of the local period containing an instant. -#}
{% macro period_of(instant, grain) -%}
    cast(date_trunc({{ grain }}, {{ local_ts(instant) }}) as date)
{%- endmacro %}

{#- The first day of the next period after a period_start (SQL `grain` is 'week'/'month'). -#}
{% macro next_period_start(period_start, grain) -%}
    case
        when {{ grain }} = 'week' then {{ add_days(period_start, 7) }}
        else {{ add_months(period_start, 1) }}
    end
{%- endmacro %}

{#- A period is complete when the local midnight that starts the next period is <= as_of:
    when the local date at as_of has reached the next period's first day. Compared on local
    dates (as_of taken to local time, which is exact) rather than by taking that midnight to
    an instant: a midnight the clocks repeat (a fall-back at midnight) is two instants and a
    midnight they skip is none, and the engines chose differently between the two; on dates
    the period is complete from the first instant of the day, on both. -#}
{% macro is_period_complete(period_start, grain, as_of_local_date) -%}
    ({{ next_period_start(period_start, grain) }} <= {{ as_of_local_date }})
{%- endmacro %}

{#- The end of the conversion window of an instant: exactly conversion_window_days × 24 hours
    later. -#}
{% macro conversion_window_end(instant) -%}
    {{ add_hours(instant, var('conversion_window_days') | int * 24) }}
{%- endmacro %}
