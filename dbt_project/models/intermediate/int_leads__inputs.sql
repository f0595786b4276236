-- A fingerprint of everything a contact's classification depends on (consistency rule 5,
-- stability): its contact row, its company row, its marketing events, every deal that names
-- it as primary contact, and those deals' quotes — compared by content, not by file.
-- Between two runs under the same definitions version and settings, a contact with the same
-- fingerprint must keep its stage and stage timestamps.
with contacts as (
    select * from {{ ref('stg_crm__contacts') }}
),

companies as (
    select * from {{ ref('stg_crm__companies') }}
),

events as (
    select * from {{ ref('stg_crm__marketing_events') }}
),

deals as (
    select * from {{ ref('stg_crm__deals') }}
),

quotes as (
    select * from {{ ref('stg_crm__quotes') }}
),

contact_rows as (
    select contact_id, company_id, {{ row_fingerprint() }} as fingerprint from contacts
),

company_rows as (
    select company_id, {{ row_fingerprint() }} as fingerprint from companies
),

event_rows as (
    select contact_id, event_id, {{ row_fingerprint() }} as fingerprint from events
),

contact_events as (
    select contact_id, md5({{ ordered_string_agg('fingerprint', "','", 'event_id') }}) as fingerprint
    from event_rows
    group by contact_id
),

quote_rows as (
    select deal_id, quote_id, {{ row_fingerprint() }} as fingerprint from quotes
),

deal_quotes as (
    select deal_id, {{ ordered_string_agg('fingerprint', "','", 'quote_id') }} as fingerprint
    from quote_rows
    group by deal_id
),

deal_rows as (
    select deal_id, contact_id, {{ row_fingerprint() }} as fingerprint from deals
    where contact_id is not null
),

contact_deals as (
    select
        deal_rows.contact_id,
        md5({{ ordered_string_agg(
            "deal_rows.fingerprint || ':' || coalesce(deal_quotes.fingerprint, '')",
            "','", 'deal_rows.deal_id'
        ) }}) as fingerprint
    from deal_rows
    left join deal_quotes on deal_rows.deal_id = deal_quotes.deal_id
    group by deal_rows.contact_id
)

select
    contact_rows.contact_id,
    md5(concat_ws(
        '|',
        contact_rows.fingerprint,
        coalesce(company_rows.fingerprint, '-'),
        coalesce(contact_events.fingerprint, '-'),
        coalesce(contact_deals.fingerprint, '-')
    )) as inputs_fingerprint
from contact_rows
left join company_rows on contact_rows.company_id = company_rows.company_id
left join contact_events on contact_rows.contact_id = contact_events.contact_id
left join contact_deals on contact_rows.contact_id = contact_deals.contact_id
