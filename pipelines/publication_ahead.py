"""The publication written while the audit runs: the W of write–audit–publish beside the A.

The checks step starts a child process that copies the build's marts into the run's candidate
file and writes their Parquet (`pipelines.publish.write_marts_ahead`) while GX validates the
same build; the step waits for it before it reports. When a blocking check fails, or the
checks cannot run, the candidate is discarded and nothing is published; otherwise the
publication step only adds the history and swaps the candidate in. A failed copy costs
nothing but time: the publication then copies the marts itself.

The child is a guarded process (`run_guard.guarded_executable`): the kernel kills it when the
run dies, and SIGTERM ends it with the run's other children, so a stopped run leaves no
writer behind; what it left is removed by the next publication.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.publish import discard_candidate, write_marts_ahead
from pipelines.run_guard import guarded_executable
from pipelines.safe_text import excerpt
from pipelines.settings import Settings


@dataclass
class PublicationAhead:
    """A candidate being written by a child process, for one run."""

    process: subprocess.Popen[bytes]
    warehouse_dir: Path
    run_id: str

    def finish(self, *, keep: bool, log: Callable[[str], None]) -> bool:
        """Wait for the copy when the candidate may be published (`keep`), else stop it and
        discard what it wrote. Whether a complete candidate is left for the publication. A
        wait that is interrupted (the run is stopped) stops the copy and discards it too."""
        if not keep:
            self.discard()
            log("the marts copied for publication during the checks are discarded")
            return False
        try:
            output, _ = self.process.communicate()
        except BaseException:
            self.discard()
            raise
        if self.process.returncode != 0:
            lines = output.decode("utf-8", errors="replace").strip().splitlines() or ["?"]
            log(f"the marts could not be copied during the checks (exit "
                f"{self.process.returncode}: {excerpt(lines[-1])}); "
                "the publication copies them itself")
            discard_candidate(self.warehouse_dir, self.run_id)
            return False
        log("the marts were copied for publication while the checks ran")
        return True

    def discard(self) -> None:
        """Stop the copy and remove what it wrote."""
        self.process.kill()
        self.process.communicate()
        discard_candidate(self.warehouse_dir, self.run_id)


def start_publication_ahead(settings: Settings, run_id: str) -> PublicationAhead:
    """Start writing `run_id`'s candidate from the build (read-only: the checks read it too).
    Call it after the last write to the build of the checks step."""
    process = subprocess.Popen(
        [guarded_executable(sys.executable), "-m", __name__, str(settings.build_database),
         str(settings.warehouse_dir), run_id, settings.duckdb_memory_limit],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        # DuckDB spills an in-memory session's data into `.tmp` under its working folder
        cwd=settings.warehouse_dir,
    )
    return PublicationAhead(process, settings.warehouse_dir, run_id)


def _main() -> None:
    build_database, warehouse_dir, run_id, memory_limit = sys.argv[1:5]
    write_marts_ahead(Path(build_database), Path(warehouse_dir), run_id, memory_limit)


if __name__ == "__main__":
    _main()
