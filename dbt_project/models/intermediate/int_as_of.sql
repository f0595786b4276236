-- The instant that counts as "now": the `as_of` var when the run sets it, else the latest
-- event over live rows. updated_at and the created_at of companies and contacts never move it.
with activities as (
    select occurred_at as event_at from {{ ref('stg_crm__activities') }}
),

marketing_events as (
    select occurred_at as event_at from {{ ref('stg_crm__marketing_events') }}
),

lifecycle_changes as (
    select changed_at as event_at from {{ ref('stg_crm__lifecycle_changes') }}
),

deal_stage_changes as (
    select changed_at as event_at from {{ ref('stg_crm__deal_stage_changes') }}
),

deals_created as (
    select created_at as event_at from {{ ref('stg_crm__deals') }}
),

deals_closed as (
    select closed_at as event_at from {{ ref('stg_crm__deals') }}
    where closed_at is not null
),

quotes_sent as (
    select sent_at as event_at from {{ ref('stg_crm__quotes') }}
    where status <> 'draft'
),

all_events as (
    select event_at from activities
    union all select event_at from marketing_events
    union all select event_at from lifecycle_changes
    union all select event_at from deal_stage_changes
    union all select event_at from deals_created
    union all select event_at from deals_closed
    union all select event_at from quotes_sent
),

data_as_of as (
    select max(event_at) as latest_event_at from all_events
),

final as (
    select
        {% if var('as_of') %}
        cast('{{ var("as_of") }}' as {{ type_instant() }}) as as_of,
        true as is_as_of_set_by_run,
        {% else %}
        latest_event_at as as_of,
        false as is_as_of_set_by_run,
        {% endif %}
        latest_event_at
    from data_as_of
)

select
    as_of,
    cast({{ local_ts('as_of') }} as date) as as_of_local_date,
    is_as_of_set_by_run,
    latest_event_at
from final
