-- Fit (definitions, "Marketing lead"): the contact's e-mail has a domain — the lower-cased
-- text after the last @ — that is not a free-mail domain, and the contact belongs to a live
-- company. Judged on the contact's current data.
with contacts as (
    select * from {{ ref('stg_crm__contacts') }}
),

companies as (
    select * from {{ ref('stg_crm__companies') }}
),

free_mail_domains as (
    select * from {{ ref('free_mail_domains') }}
),

domains as (
    select
        contacts.contact_id,
        contacts.company_id,
        contacts.owner_user_id,
        contacts.email,
        nullif(
            {{ lower_text(trim_spaces("regexp_extract(contacts.email, '@([^@]*)$', 1)")) }}, ''
        ) as email_domain,
        companies.company_id is not null as has_live_company
    from contacts
    left join companies on contacts.company_id = companies.company_id
),

final as (
    select
        domains.contact_id,
        domains.company_id,
        domains.owner_user_id,
        domains.email_domain,
        free_mail_domains.domain is not null as is_free_mail,
        domains.has_live_company,
        domains.email_domain is not null
            and free_mail_domains.domain is null
            and domains.has_live_company as is_fit
    from domains
    left join free_mail_domains on domains.email_domain = free_mail_domains.domain
)

select * from final
