with source as (
    select * from {{ source('raw', 'deals') }}
),

latest as (
    select * from source
    {{ latest_version(['deal_id']) }}
),

renamed as (
    select
        deal_id,
        contact_id,
        company_id,
        owner_user_id,
        deal_type,
        stage,
        amount,
        currency,
        created_at,
        -- an open deal's (expected) close date is ignored
        case when stage in ('closed_won', 'closed_lost') then closed_at end as closed_at,
        lost_reason,
        updated_at,
        _delivery as source_delivery,
        _file as source_file,
        _line as source_line
    from latest
    where not is_deleted
)

select * from renamed
