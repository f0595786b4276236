with source as (
    select * from {{ source('raw', 'deal_stage_changes') }}
),

latest as (
    select * from source
    {{ latest_version(['deal_id', 'stage', 'changed_at'], by_updated_at=false) }}
),

renamed as (
    select
        deal_id,
        stage,
        changed_at,
        changed_by_user_id,
        _delivery as source_delivery,
        _file as source_file,
        _line as source_line
    from latest
    where not is_deleted
)

select * from renamed
