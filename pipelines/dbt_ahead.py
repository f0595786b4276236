"""The build's dbt started ahead: it imports dbt while the run loads, and builds when the dbt
step hands it the build's command.

A dbt started as a new interpreter spends its first seconds on one core importing dbt, its
adapter, agate and Jinja before it reads the project; in a night's run that sits on the data
path, between the load and the first model. Here the dbt resource starts that interpreter when
the run sets up its resources (beside the parse ahead, pipelines/dbt_parse_ahead.py), so the
imports run beside the load. The build's dbt launcher (the run guard's, pipelines/run_guard.py
`guarded_executable`) then hands its command to it — its arguments, environment and working
folder, and its standard streams as file descriptors over a UNIX socket — instead of starting a
new dbt (`hand_over`), passes on the signals it gets, and ends as that dbt ends: with its exit
code, once the process is gone (the build's DuckDB file is closed by then), or by the signal
that ended it. Without it (not started, gone, or a command the run starts otherwise: the parse,
`dbt docs generate`) the launcher starts the real dbt, as it always did.

What dbt's modules read once at import (the locale, TZ) is the run's own: the run starts the
ahead dbt with its environment. Only for the DuckDB engine and the installed dbt (the dbt
resource decides, pipelines/resources.py): a Spark build's dbt hosts Spark's driver, and a dbt
the install names (SALES_KPI_DBT_EXECUTABLE: the tests' warm dbt) starts in its own way.

Standard library only at import: the launcher imports `hand_over` before every dbt it starts.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import sys
from contextlib import suppress

# Set (to the socket's path) in the environment of the one dbt command that may be handed over
AHEAD_ENV = "SALES_KPI_DBT_AHEAD"
# What a dbt build imports (dbt imports lazily, by command); the tests' warm dbt imports these
# and what `dbt docs generate` adds (tests/warm_dbt.py)
BUILD_IMPORTS = (
    "dbt.cli.main", "dbt.adapters.duckdb", "dbt.adapters.duckdb.impl",
    "dbt.adapters.duckdb.connections", "dbt.task.build", "dbt.task.test", "dbt.task.seed",
    "dbt.parser.manifest", "dbt.compilation", "dbt.context.providers",
    "dbt_common.clients.agate_helper", "dbt_metricflow", "agate", "duckdb", "babel.dates",
    "google.protobuf.descriptor_pb2", "multiprocessing.dummy", "multiprocessing.resource_tracker",
    "_strptime",
)
# The signals the launcher passes on to the dbt it handed its command to
PASSED_ON = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_MESSAGE_BYTES = 1 << 20  # a request: arguments and environment, well below this


def hand_over(path: str, args: list[str]) -> None:
    """In the launcher: have the dbt waiting at `path` run `dbt <args>` here, and end as it
    ends. Returns (and the launcher starts the real dbt) only when no dbt took the command."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    request = {"args": args, "cwd": os.getcwd(),
               "env": {name: value for name, value in os.environ.items() if name != AHEAD_ENV}}
    try:
        connection.connect(path)
        socket.send_fds(connection, [json.dumps(request).encode()], [0, 1, 2])
        taken = connection.recv(_MESSAGE_BYTES)
    except OSError:
        connection.close()
        return
    if not taken:  # it ended before it took the command: nothing ran
        connection.close()
        return
    pid = int(json.loads(taken)["pid"])
    received: list[int] = []

    def pass_on(signum: int, _frame: object) -> None:
        received.append(signum)
        with suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in PASSED_ON:
        signal.signal(signum, pass_on)
    code: object = None
    while message := connection.recv(_MESSAGE_BYTES):  # empty once its process has ended
        code = json.loads(message)["exit"]
    if code is None:  # ended without an exit code: by a signal, this one's or another's
        ended_by = received[-1] if received else signal.SIGKILL
        signal.signal(ended_by, signal.SIG_DFL)
        os.kill(os.getpid(), ended_by)
    sys.exit(code if isinstance(code, int) else 1)


def serve(path: str) -> None:
    """In the ahead dbt: listen at `path`, import dbt, take one command and run it as the
    console script `dbt` would, in this process. An ahead dbt nobody hands a command to is
    ended by its run (pipelines/resources.py) or dies with it (the run guard's launcher)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(1)  # a launcher may connect now; it waits until the imports are done
    for module in BUILD_IMPORTS:
        importlib.import_module(module)
    connection, _ = listener.accept()
    listener.close()
    message, fds, _flags, _address = socket.recv_fds(connection, _MESSAGE_BYTES, 3)
    request = json.loads(message)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["dbt", *request["args"]]
    # the launcher's end of the socket sees it close only when this process has ended: a
    # descriptor no object owns, so nothing closes it before the exit does
    reply = os.dup(connection.fileno())
    connection.close()
    os.write(reply, json.dumps({"pid": os.getpid()}).encode())
    from dbt.cli.main import cli

    try:
        code = cli()
    except SystemExit as exit_:
        code = exit_.code
    status = 0 if code is None else code if isinstance(code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(reply, json.dumps({"exit": status}).encode())
    sys.exit(status)


if __name__ == "__main__":
    serve(sys.argv[1])
