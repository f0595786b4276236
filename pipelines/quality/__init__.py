"""Data quality gates: Great Expectations suites validated on the build — as SQL inside DuckDB,
or as Spark DataFrames through GX's Spark data source on `--engine spark`."""
