"""sales-kpi-pipeline: trustworthy sales KPIs from raw CRM extracts."""

import sys
import warnings

# pyspark 4 (the spark extra; imported by Great Expectations when installed) warns on import
# that it does not fully support pandas 3: nothing here uses pyspark's pandas API. The dbt
# process of a Spark build filters it too (pipelines/spark_build.py).
PYSPARK_PANDAS_WARNING = "PySpark does not yet fully support pandas"
warnings.filterwarnings("ignore", message=PYSPARK_PANDAS_WARNING, category=FutureWarning)


def _name_an_anonymous_main_module() -> None:
    """Give a `python -c` main module a `__file__`, so that pyspark cannot end the process.

    With the `spark` extra installed, importing Great Expectations imports
    `pyspark.sql.connect`, whose first line decides that a `__main__` with neither `__spec__`
    nor `__file__` (`python -c ...`, and pytest-xdist's workers) means pyspark's own doctests
    are running and, without Spark Connect's optional dependencies, calls `sys.exit(0)`: a
    `python -c "from pipelines.cli import main; ..."` run would stop before loading anything
    and report success. Such a main module is named for what it is (`<string>`, as Python
    names `-c` code in tracebacks); a script, `python -m` or an interactive shell is left
    alone.
    """
    main = sys.modules.get("__main__")
    if (
        main is not None
        and getattr(main, "__spec__", None) is None
        and not hasattr(main, "__file__")
        and not hasattr(sys, "ps1")
    ):
        main.__file__ = "<string>"


_name_an_anonymous_main_module()
