with source as (
    select * from {{ source('raw', 'companies') }}
),

latest as (
    select * from source
    {{ latest_version(['company_id']) }}
),

renamed as (
    select
        company_id,
        name as company_name,
        {{ lower_text('domain') }} as domain,
        industry,
        employee_count,
        {{ upper_text('country') }} as country,
        created_at,
        updated_at,
        _delivery as source_delivery,
        _file as source_file,
        _line as source_line
    from latest
    where not is_deleted
)

select * from renamed
