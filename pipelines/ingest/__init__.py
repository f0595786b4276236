"""Loading raw CRM extracts (the canonical contract) into the raw layer of the warehouse."""
