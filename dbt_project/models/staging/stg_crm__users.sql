with source as (
    select * from {{ source('raw', 'users') }}
),

latest as (
    select * from source
    {{ latest_version(['user_id']) }}
),

renamed as (
    select
        user_id,
        full_name,
        email,
        role,
        coalesce(team, 'Unassigned') as team,
        is_active,
        updated_at,
        _delivery as source_delivery,
        _file as source_file,
        _line as source_line
    from latest
)

select * from renamed
