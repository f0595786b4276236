"""sales-kpi-pipeline: trustworthy sales KPIs from raw CRM extracts."""
