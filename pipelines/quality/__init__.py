"""Data quality gates: Great Expectations suites validated as SQL inside the DuckDB warehouse."""
