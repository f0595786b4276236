"""What people read: the KPI dashboard and the auditor's definitions page (static HTML)."""

from pipelines.reporting.dashboard import write_dashboard
from pipelines.reporting.definitions_page import write_definitions_page

__all__ = ["write_dashboard", "write_definitions_page"]
