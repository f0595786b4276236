"""The run's ephemeral Dagster instance (pipelines/run_instance.py): its event log stores and
reads a run's events on the one SQLite connection it holds, and records the same events as
Dagster's own ephemeral instance."""


import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import AssetExecutionContext, DagsterInstance, Definitions, asset, define_asset_job
from sqlalchemy import event

from pipelines.run_instance import HeldConnectionEventLogStorage, ephemeral_instance


@asset
def upstream(context: AssetExecutionContext) -> int:
    context.log.info("upstream")
    return 1


@asset
def downstream(context: AssetExecutionContext, upstream: int) -> int:
    def log_from_another_thread() -> None:
        context.log.info("from another thread")

    worker = threading.Thread(target=log_from_another_thread)
    worker.start()
    worker.join()
    return upstream + 1


JOB = Definitions(
    assets=[upstream, downstream], jobs=[define_asset_job("both")]
).resolve_job_def("both")


@contextmanager
def counted_connections(instance: DagsterInstance) -> Iterator[list[int]]:
    """The SQLite connections the instance's event log opens meanwhile (by thread)."""
    opened: list[int] = []
    engine = instance.event_log_storage._engine

    def on_connect(*_: object) -> None:
        opened.append(threading.get_ident())

    event.listen(engine, "connect", on_connect)
    try:
        yield opened
    finally:
        event.remove(engine, "connect", on_connect)


def _event_types(instance: DagsterInstance, run_id: str) -> list[str]:
    """The run's events in order: Dagster's by type, the others (log lines) by message,
    without the instance's own temporary folder."""
    storage = str(instance.storage_directory())
    return [
        entry.dagster_event.event_type_value if entry.dagster_event
        else entry.user_message.replace(storage, "<storage>")
        for entry in instance.all_logs(run_id)
    ]


def test_a_runs_events_are_stored_on_the_connection_the_event_log_holds() -> None:
    """Once the storage has asked which tables it has (a connection each, once), a whole run
    opens no connection on the thread that holds the storage's; the event logged from another
    thread gets one of its own."""
    with ephemeral_instance() as instance:
        assert isinstance(instance.event_log_storage, HeldConnectionEventLogStorage)
        assert JOB.execute_in_process(instance=instance).success
        with counted_connections(instance) as opened:
            result = JOB.execute_in_process(instance=instance)
            events = _event_types(instance, result.run_id)
        assert result.success
        assert threading.get_ident() not in opened
        assert len(opened) == 1  # the log line from another thread
        assert len(events) > 20 and "from another thread" in events


def test_the_run_records_the_events_dagsters_ephemeral_instance_records() -> None:
    recorded = []
    for make in (DagsterInstance.ephemeral, ephemeral_instance):
        with make() as instance:
            result = JOB.execute_in_process(instance=instance)
            recorded.append(_event_types(instance, result.run_id))
            assert instance.get_latest_materialization_event(
                downstream.key
            ).asset_materialization.asset_key == downstream.key
    assert recorded[0] == recorded[1]
    assert "from another thread" in recorded[1]
