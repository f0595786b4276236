"""The Dagster instance of a run without DAGSTER_HOME: Dagster's ephemeral instance, with an
event log that keeps its one SQLite connection.

Dagster's in-memory event log (`InMemoryEventLogStorage`) opens a new SQLite connection, and
runs two PRAGMAs on it, for every event it stores or reads (its engine has no pool). A night
stores ≈ 570 events — each dbt model and test is planned, then done, and each one's output is
an event — and on the sample those connections cost ≈ 0.6 of the ≈ 1.4 CPU-s of storing them
(measured 2026-12-06: 1.29–1.51 s per run as Dagster ships it, 0.68–0.96 s on one connection;
the test suite runs the job ≈ 40 times). The events, their order and what a run reads back
are the same: only the connection is kept.

The storage is Dagster's own: a SQL event log's two connection methods (`run_connection`,
`index_connection`, the abstract methods every SQL event log storage implements) yield the
connection the storage already holds for its lifetime (it keeps the in-memory database alive),
inside a transaction, under the storage's own lock (and whether it has a table, asked at
every asset event on yet another connection, is asked once per table). SQLite lets a
connection serve only the thread that opened it: a call from any other thread gets a new
connection, as Dagster's does.
With DAGSTER_HOME set, the run is recorded in that instance and none of this applies.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import DagsterInstance
from dagster._core.instance.types import InstanceType
from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
from dagster._core.run_coordinator import DefaultRunCoordinator
from dagster._core.storage.event_log import InMemoryEventLogStorage
from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager
from dagster._core.storage.root import TemporaryLocalArtifactStorage
from dagster._core.storage.runs import InMemoryRunStorage
from sqlalchemy.engine import Connection


class HeldConnectionEventLogStorage(InMemoryEventLogStorage):
    """Dagster's in-memory event log on the one connection it holds (see the module)."""

    def __init__(self, inst_data=None, preload=None) -> None:
        self._holder = threading.get_ident()  # before Dagster's init, which may store events
        self._tables: dict[str, bool] = {}
        super().__init__(inst_data, preload)

    @contextmanager
    def _held_connection(self) -> Iterator[Connection]:
        if threading.get_ident() != self._holder:
            with super().run_connection() as connection:  # a connection of its own
                yield connection
            return
        with self._db_lock, self._held_conn.begin():
            yield self._held_conn

    def run_connection(self, run_id: str | None = None):
        return self._held_connection()

    def index_connection(self):
        return self._held_connection()

    def has_table(self, table_name: str) -> bool:
        """Asked at every asset event, answered by Dagster on a connection of its own: the
        tables are made with the storage and never dropped, so each answer is kept."""
        if table_name not in self._tables:
            self._tables[table_name] = super().has_table(table_name)
        return self._tables[table_name]


def ephemeral_instance() -> DagsterInstance:
    """What `DagsterInstance.ephemeral()` makes, with `HeldConnectionEventLogStorage`. Made and
    disposed of by the thread that runs the job (pipelines/job_runner.py)."""
    return DagsterInstance(
        instance_type=InstanceType.EPHEMERAL,
        local_artifact_storage=TemporaryLocalArtifactStorage(),
        run_storage=InMemoryRunStorage(),
        event_storage=HeldConnectionEventLogStorage(),
        compute_log_manager=NoOpComputeLogManager(),
        run_coordinator=DefaultRunCoordinator(),
        run_launcher=SyncInMemoryRunLauncher(),
    )
