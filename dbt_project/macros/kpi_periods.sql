{#- Period helpers for the KPIs (definitions, "Ground rules"): periods are local calendar
    months and ISO weeks in the business timezone; period_start is their first day. -#}

{#- The period_start (a DATE) of the local period containing an instant. -#}
{% macro period_of(instant, grain) -%}
    cast(date_trunc({{ grain }}, {{ local_ts(instant) }}) as date)
{%- endmacro %}

{#- The first day of the next period after a period_start (SQL `grain` is 'week'/'month'). -#}
{% macro next_period_start(period_start, grain) -%}
    cast({{ period_start }} + case when {{ grain }} = 'week' then interval 7 day else interval 1 month end as date)
{%- endmacro %}

{#- A period is complete when the local midnight that starts the next period is <= as_of. -#}
{% macro is_period_complete(period_start, grain, as_of) -%}
    (timezone('{{ var("business_timezone") }}', cast({{ next_period_start(period_start, grain) }} as timestamp)) <= {{ as_of }})
{%- endmacro %}

{#- The conversion window as an exact duration: conversion_window_days × 24 hours. -#}
{% macro conversion_window() -%}
    to_hours(cast({{ var('conversion_window_days') }} as bigint) * 24)
{%- endmacro %}
