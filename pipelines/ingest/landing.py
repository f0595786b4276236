"""Finding the files of a landing folder: deliveries, entities, formats and content hashes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pipelines.contract import ENTITIES, FILE_EXTENSIONS


class LandingError(Exception):
    """The landing folder itself cannot be used (missing, ambiguous files)."""


@dataclass(frozen=True)
class LandingFile:
    """One entity file of one delivery."""

    delivery: str
    entity: str
    path: Path
    extension: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def label(self) -> str:
        """How messages name the file: `<delivery>/<file>`."""
        return f"{self.delivery}/{self.path.name}"

    @cached_property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def split_name(file_name: str) -> tuple[str, str] | None:
    """`contacts.csv.gz` → (`contacts`, `csv.gz`); None for names that are no entity file."""
    lowered = file_name.lower()
    for extension in FILE_EXTENSIONS:  # longest first: csv.gz before csv
        suffix = "." + extension
        if lowered.endswith(suffix):
            return lowered[: -len(suffix)], extension
    return None


def scan_landing(landing: Path) -> tuple[list[LandingFile], list[str]]:
    """All entity files, in delivery order, and notes about files that were not recognised.

    A delivery is a sub-folder; deliveries sort by name. Two files for the same entity in one
    delivery (e.g. `contacts.csv` and `contacts.parquet`) make the delivery ambiguous.
    """
    if not landing.is_dir():
        raise LandingError(f"landing folder {landing} does not exist or is not a folder")
    files: list[LandingFile] = []
    notes: list[str] = []
    for delivery_dir in sorted(p for p in landing.iterdir() if p.is_dir()):
        if delivery_dir.name.startswith("."):
            continue
        seen: dict[str, LandingFile] = {}
        for path in sorted(p for p in delivery_dir.iterdir() if p.is_file()):
            if path.name.startswith("."):
                continue
            parts = split_name(path.name)
            if parts is None or parts[0] not in ENTITIES:
                notes.append(f"{delivery_dir.name}/{path.name}: not an entity file, ignored")
                continue
            entity, extension = parts
            if entity in seen:
                raise LandingError(
                    f"{delivery_dir.name}: two files for entity {entity!r} "
                    f"({seen[entity].name} and {path.name}); keep one"
                )
            seen[entity] = LandingFile(delivery_dir.name, entity, path, extension)
        files.extend(seen.values())
    loose = sorted(p.name for p in landing.iterdir() if p.is_file() and split_name(p.name))
    if loose:
        notes.append(
            f"files directly in {landing} are not in a delivery sub-folder and were ignored: "
            + ", ".join(loose)
        )
    return files, notes
