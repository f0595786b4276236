with source as (
    select * from {{ source('raw', 'marketing_events') }}
),

latest as (
    select * from source
    {{ latest_version(['event_id'], by_updated_at=false) }}
),

renamed as (
    select
        event_id,
        contact_id,
        event_type,
        occurred_at,
        campaign,
        channel,
        _delivery as source_delivery,
        _file as source_file,
        _line as source_line
    from latest
    where not is_deleted
)

select * from renamed
