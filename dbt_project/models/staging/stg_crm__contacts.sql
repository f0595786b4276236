with source as (
    select * from {{ source('raw', 'contacts') }}
),

latest as (
    select * from source
    {{ latest_version(['contact_id']) }}
),

renamed as (
    select
        contact_id,
        company_id,
        email,
        first_name,
        last_name,
        job_title,
        owner_user_id,
        created_at,
        updated_at,
        _delivery as source_delivery,
        _file as source_file,
        _line as source_line
    from latest
    where not is_deleted
)

select * from renamed
