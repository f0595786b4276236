"""Who answers for which asset (Dagster's owners): the data team for the pipeline; the
definitions, the targets and what is published are owned with the sales managers who agreed
them."""

DATA_TEAM = ("team:data",)
WITH_SALES_MANAGEMENT = ("team:data", "team:sales-management")
