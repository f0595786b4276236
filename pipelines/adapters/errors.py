"""The adapter's errors: each message names the mapping file, the YAML key and, where one is
involved, the source file, so the person who wrote the mapping knows what to fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.adapters.report import AdapterReport


class AdapterError(Exception):
    """The source could not be turned into a canonical landing; `messages` lists every cause."""

    def __init__(self, messages: list[str], report: AdapterReport | None = None) -> None:
        self.messages = list(messages)
        self.report = report
        super().__init__("\n".join(self.messages))


class MappingError(AdapterError):
    """The mapping YAML is wrong: a bad key, value, expression or a column the source lacks."""


class SourceFileError(AdapterError):
    """A source file cannot be read at all (encoding, structure, format)."""
