with source as (
    select * from {{ source('raw', 'fx_rates') }}
),

latest as (
    select * from source
    {{ latest_version(['currency', 'month'], by_updated_at=false) }}
),

renamed as (
    select
        currency,
        cast(month || '-01' as date) as rate_month,
        rate_to_eur,
        _delivery as source_delivery,
        _file as source_file,
        _line as source_line
    from latest
    -- EUR is always 1: EUR rows are ignored
    where currency <> 'EUR'
)

select * from renamed
