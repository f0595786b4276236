-- Rule 1: every live contact has exactly one stage from the agreed set and the version it
-- was classified under (every live contact of staging is in dim_leads, once).
select
    leads.contact_id,
    leads.stage,
    leads.definitions_version,
    (select count(*) from staging.stg_crm__contacts) as live_contacts,
    (select count(*) from marts.dim_leads) as classified_contacts
from marts.dim_leads as leads
