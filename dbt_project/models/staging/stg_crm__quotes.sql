with source as (
    select * from {{ source('raw', 'quotes') }}
),

latest as (
    select * from source
    {{ latest_version(['quote_id']) }}
),

renamed as (
    select
        quote_id,
        deal_id,
        status,
        amount,
        currency,
        created_at,
        sent_at,
        updated_at,
        _delivery as source_delivery,
        _file as source_file,
        _line as source_line
    from latest
    where not is_deleted
)

select * from renamed
