{#- Periods are taken on local wall time in the business timezone (definitions). -#}
{% macro local_ts(instant) -%}
    {{ utc_to_local(instant, var("business_timezone")) }}
{%- endmacro %}

{#- The first day of the local calendar month of an instant. -#}
{% macro local_month(instant) -%}
    cast(date_trunc('month', {{ local_ts(instant) }}) as date)
{%- endmacro %}

{#- The Monday of the local ISO week of an instant. -#}
{% macro local_week(instant) -%}
    cast(date_trunc('week', {{ local_ts(instant) }}) as date)
{%- endmacro %}
