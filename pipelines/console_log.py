"""Dagster's console log, escaped: the job's `console` logger.

Dagster's own console lines carry data — a file name in "loaded N rows", a rep's name in a
check's description, a value quoted by a failure — and its default logger prints them as
they are. This one is Dagster's coloured console logger with a filter that passes every
message through `settings.printable` (secrets redacted, control characters escaped) before
it is formatted, so an `ESC[31m` or an OSC title in a CRM value cannot reach a terminal
through `dagster dev`, the daemon's output or `sales-kpi run`.
"""

from __future__ import annotations

import logging

from dagster import Field, InitLoggerContext, colored_console_logger, logger


class EscapeData(logging.Filter):
    """Replaces a record's message by its escaped, redacted text (arguments merged in)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pipelines.settings import printable

        record.msg = printable(record.getMessage())
        record.args = None
        return True


@logger(
    {
        "log_level": Field(str, is_required=False, default_value="INFO",
                           description="The logger's threshold."),
        "name": Field(str, is_required=False, default_value="dagster",
                      description="The name of the logger."),
    },
    description="Dagster's coloured console logger, with data escaped for terminals.",
)
def terminal_safe_console_logger(init_context: InitLoggerContext) -> logging.Logger:
    console = colored_console_logger.logger_fn(init_context)
    for handler in console.handlers:
        handler.addFilter(EscapeData())
    return console
