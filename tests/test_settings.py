"""Settings: defaults, environment overrides and their parsing."""

from __future__ import annotations

from pipelines.settings import Settings


def test_a_naive_as_of_from_the_environment_is_local_to_the_business_timezone() -> None:
    settings = Settings.from_env(
        {"SALES_KPI_AS_OF": "2026-07-01 12:00", "SALES_KPI_BUSINESS_TIMEZONE": "Europe/London"}
    )
    assert settings.as_of is not None
    assert settings.as_of.utcoffset().total_seconds() == 3600  # BST, not CEST
