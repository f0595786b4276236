with source as (
    select * from {{ source('raw', 'target_overrides') }}
),

renamed as (
    select
        kpi_id,
        scope,
        scope_id,
        period_start,
        cast(target as double) as target,
        source_file,
        source_line
    from source
)

select * from renamed
