"""sales-kpi-pipeline: trustworthy sales KPIs from raw CRM extracts."""

import warnings

# pyspark 4 (the spark extra; imported by Great Expectations when installed) warns on import
# that it does not fully support pandas 3: nothing here uses pyspark's pandas API. The dbt
# process of a Spark build filters it too (pipelines/spark_build.py).
PYSPARK_PANDAS_WARNING = "PySpark does not yet fully support pandas"
warnings.filterwarnings("ignore", message=PYSPARK_PANDAS_WARNING, category=FutureWarning)

# Every time-zone lookup reads the pinned IANA rules, those DuckDB computes with, not the
# operating system's copy (pipelines/local_time.py).
from pipelines.local_time import use_pinned_rules  # noqa: E402

use_pinned_rules()
