-- Rule 5: against the last published run, under the same definitions version and settings,
-- a contact whose inputs did not change keeps its stage and stage timestamps.
-- One row per contact that is comparable (empty when there is no previous run to compare).
select
    current_leads.contact_id,
    current_leads.stage = previous_leads.stage
        and current_leads.marketing_lead_at is not distinct from previous_leads.marketing_lead_at
        and current_leads.sales_lead_at is not distinct from previous_leads.sales_lead_at
        and current_leads.quote_at is not distinct from previous_leads.quote_at
        and current_leads.customer_at is not distinct from previous_leads.customer_at
        as is_stable
from marts.dim_leads as current_leads
inner join audit.previous_dim_leads as previous_leads
    on current_leads.contact_id = previous_leads.contact_id
cross join audit.previous_run
cross join audit.current_run
where previous_run.definitions_version = current_leads.definitions_version
  and previous_run.settings = current_run.settings
  and previous_leads.inputs_fingerprint = current_leads.inputs_fingerprint
