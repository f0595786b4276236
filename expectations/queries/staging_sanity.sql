-- Raw/staging sanity the KPIs need (warnings: data issues to fix in the CRM): a deal does not
-- close before it was opened, a quote is not sent before it was created, and a call does not
-- last a negative time.
select 'deal' as record_type, deal_id as record_id,
       coalesce(closed_at < created_at, false) as is_insane
from staging.stg_crm__deals
union all
select 'quote', quote_id, coalesce(sent_at < created_at, false)
from staging.stg_crm__quotes
union all
select 'activity', activity_id, coalesce(duration_seconds < 0, false)
from staging.stg_crm__activities
