with source as (
    select * from {{ source('raw', 'activities') }}
),

latest as (
    select * from source
    {{ latest_version(['activity_id']) }}
),

renamed as (
    select
        activity_id,
        activity_type,
        direction,
        owner_user_id,
        contact_id,
        deal_id,
        occurred_at,
        duration_seconds,
        outcome,
        updated_at,
        _delivery as source_delivery,
        _file as source_file,
        _line as source_line
    from latest
    where not is_deleted
)

select * from renamed
