with source as (
    select * from {{ source('raw', 'lifecycle_changes') }}
),

latest as (
    select * from source
    {{ latest_version(['change_id'], by_updated_at=false) }}
),

renamed as (
    select
        change_id,
        contact_id,
        lifecycle_stage as crm_label,
        changed_at,
        changed_by_user_id,
        _delivery as source_delivery,
        _file as source_file,
        _line as source_line
    from latest
    where not is_deleted
)

select * from renamed
