"""Finding the files of a landing folder: deliveries, entities, formats and content hashes.

The landing folder is a trust boundary: whoever can write into it decides what is read, but
only *inside* it. So the scan

- refuses anything reached through a symbolic link that leads out of the landing folder (a
  `contacts.csv` linking to `/etc/passwd` or to a secrets file must never be opened, hashed
  or quoted), naming the link; links that stay inside the folder are followed;
- accounts for every entry it sees: a file is an entity file (loaded or rejected by the
  loader) or is listed in the notes with the reason it was ignored. Nothing is skipped in
  silence.

Names starting with a dot are ignored **by rule** and listed: a hidden folder or file is an
upload in progress (rsync and many copy tools write `.name.XXXX` first) or a tool's own
(`.DS_Store`, Kubernetes' `..2026_11_26…` atomic-writer folders). Loading those would read a
half-copied file or a delivery twice; ignoring them silently would lose rows without anyone
knowing. To load a hidden delivery, rename it without the leading dot.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pipelines.contract import ENTITIES, FILE_EXTENSIONS
from pipelines.safe_text import single_line

# Files the pipeline itself writes at the top of a canonical landing (the source adapter's
# marker and report): known, so not reported as ignored on every run.
ADAPTER_MARKER_FILE = ".sales-kpi-adapter"
ADAPTER_REPORT_TEXT_FILE = ".adapter-report.txt"
ADAPTER_REPORT_JSON_FILE = ".adapter-report.json"
OWN_FILES = frozenset({ADAPTER_MARKER_FILE, ADAPTER_REPORT_TEXT_FILE, ADAPTER_REPORT_JSON_FILE})
# The most of an own file that is read (the adapter's reports are a few kilobytes)
OWN_FILE_BYTES = 16 << 20
# The extra columns the source adapter puts on every canonical row (where in the CRM's export
# the row came from): the loader names them in its problems, so a bad value is found in the
# file the operator has, not only in the generated landing file.
SOURCE_TRACE_COLUMNS = ("source_file", "source_line")


class LandingError(Exception):
    """The landing folder itself cannot be used (missing, ambiguous files)."""


class OutsideLandingError(LandingError):
    """An entry of the landing folder is a link that leads outside it: refused, never read."""


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
        """How messages name the file: `<delivery>/<file>`, escaped (names are data too)."""
        return single_line(f"{self.delivery}/{self.path.name}")

    @cached_property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def read_own_file(path: Path) -> str | None:
    """The text of one of the pipeline's own files at the top of a landing (the source
    adapter's reports), or None when there is none or what bears its name is no regular file
    (a link included: the pipeline writes none there).
    The landing folder is anyone's to write: a FIFO or a device under that name must not hold
    the run up, so it is opened without waiting, judged by what was opened (not by a look
    before, which a swap could outrun) and read up to OWN_FILE_BYTES."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(OWN_FILE_BYTES).decode("utf-8", errors="replace")


def split_name(file_name: str) -> tuple[str, str] | None:
    """`contacts.csv.gz` → (`contacts`, `csv.gz`); None for names that are no entity file."""
    lowered = file_name.lower()
    for extension in FILE_EXTENSIONS:  # longest first: csv.gz before csv
        suffix = "." + extension
        if lowered.endswith(suffix):
            return lowered[: -len(suffix)], extension
    return None


def leaves_folder(path: Path, root: Path) -> bool:
    """Whether `path`, with every link on its way resolved, lies outside `root` (resolved).

    A dangling link counts by where it points: it could be created there later.
    """
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    return real != real_root and real_root not in real.parents


# What opens a pattern for DuckDB's file readers in a path (its glob: `*`, `?`, `[…]`; a `]`
# without its opener is a plain character, and braces are not expanded): a delivery named
# `[.]stash` read the hidden `.stash` (a pattern that matches nothing is read as the name it
# is, one that matches reads what it matches), and `*` every delivery
PATTERN_CHARACTERS = ("*", "?", "[")


def reads_as_pattern(path: str) -> bool:
    """Whether a reader given `path` would read it as a file pattern, not as one file."""
    return any(character in path for character in PATTERN_CHARACTERS)


def not_text(name: str) -> bool:
    """Whether a name from the file system holds bytes that are not UTF-8 (Python keeps them
    as lone surrogates): no file reader, database or message takes such a name as it is."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


NOT_TEXT = "bytes that are not UTF-8 text"


def folder_path_problem(folder: Path, what: str) -> str | None:
    """Why a folder (the landing folder, a source's export folder) cannot be read from, when
    its path, as given or resolved, would be read as a file pattern or is not text; else
    None."""
    if not_text(str(folder)) or not_text(str(folder.resolve())):
        return (
            f"{what} {single_line(str(folder))}: its path holds {NOT_TEXT}: refused (not "
            "read); move it to a path written in UTF-8"
        )
    if not (reads_as_pattern(str(folder)) or reads_as_pattern(str(folder.resolve()))):
        return None
    return (
        f"{what} {single_line(str(folder))}: its path holds a character the file readers "
        f"take as a pattern ({' '.join(PATTERN_CHARACTERS)}): refused (not read); move it to "
        "a path without them"
    )


def check_inside(path: Path, root: Path, label: str) -> None:
    """Raise OutsideLandingError when `path` leads outside `root`: called by the scan and again
    just before a file is opened (the link could have been swapped in between)."""
    if leaves_folder(path, root):
        raise OutsideLandingError(
            f"{label} is a symbolic link that leads outside the landing folder: refused "
            "(not read); put the file itself in the delivery folder"
        )


def scan_landing(landing: Path) -> tuple[list[LandingFile], list[str]]:
    """All entity files, in delivery order, and notes about every entry that was ignored.

    A delivery is a sub-folder; deliveries sort by name. Two files for the same entity in one
    delivery (e.g. `contacts.csv` and `contacts.parquet`) make the delivery ambiguous. Every
    link that leads out of the landing folder is named in one OutsideLandingError.
    """
    if not landing.is_dir():
        raise LandingError(f"landing folder {landing} does not exist or is not a folder")
    if problem := folder_path_problem(landing, "landing folder"):
        raise LandingError(problem)
    files: list[LandingFile] = []
    notes: list[str] = []
    outside: list[str] = []
    loose: list[str] = []
    patterned: list[str] = []
    undecodable: list[str] = []
    for entry in _listed(landing, f"landing folder {single_line(str(landing))}", ""):
        name = single_line(entry.name)  # names are data: escaped wherever they are shown
        if leaves_folder(entry, landing):
            outside.append(name)
            continue
        if entry.name in OWN_FILES:
            if not entry.is_file():  # the pipeline writes files there, never anything else
                notes.append(f"{name}: {_kind(entry)} under the name of a file the pipeline "
                             "writes, ignored")
            continue
        if entry.name.startswith("."):
            notes.append(f"{name}: name starts with a dot ({_kind(entry)}), ignored by rule"
                         + (_entity_count(entry) if entry.is_dir() else ""))
            continue
        if entry.is_dir() and reads_as_pattern(entry.name):
            patterned.append(name)
        elif entry.is_dir() and not_text(entry.name):
            undecodable.append(name)
        elif entry.is_dir():
            files.extend(_scan_delivery(entry, landing, notes, outside))
        elif entry.is_file() and split_name(entry.name):
            loose.append(name)
        else:
            notes.append(f"{name}: {_kind(entry)} directly in the landing folder, ignored")
    if outside:
        raise OutsideLandingError(
            "refused (not read): symbolic link(s) leading outside the landing folder: "
            + ", ".join(outside) + "; put the files themselves in the delivery folders"
        )
    if patterned:
        raise LandingError(
            "refused (not read): delivery folder(s) named with a character the file readers "
            f"take as a pattern ({' '.join(PATTERN_CHARACTERS)}), which would read other "
            f"folders' files: {', '.join(patterned)}; rename them"
        )
    if undecodable:
        # a delivery's name is recorded with every row it brings (the manifest, the marts'
        # source traces): a name that is not text would stop the load; ignoring the folder
        # would drop its rows
        raise LandingError(
            f"refused (not read): delivery folder(s) whose names hold {NOT_TEXT}: "
            f"{', '.join(undecodable)}; rename them"
        )
    if loose:
        notes.append(
            f"files directly in {single_line(str(landing))} are not in a delivery sub-folder "
            "and were ignored: "
            + ", ".join(loose)
        )
    return files, notes


def _scan_delivery(
    delivery_dir: Path, landing: Path, notes: list[str], outside: list[str]
) -> list[LandingFile]:
    seen: dict[str, LandingFile] = {}
    for path in _listed(delivery_dir, f"delivery {single_line(delivery_dir.name)}",
                        ", or remove it"):
        label = single_line(f"{delivery_dir.name}/{path.name}")
        if leaves_folder(path, landing):
            outside.append(label)
            continue
        if path.name.startswith("."):
            notes.append(f"{label}: name starts with a dot ({_kind(path)}), ignored by rule")
            continue
        if not path.is_file():
            notes.append(f"{label}: {_kind(path)} inside a delivery, ignored")
            continue
        parts = split_name(path.name)
        if parts is None or parts[0] not in ENTITIES:
            notes.append(f"{label}: not an entity file, ignored")
            continue
        entity, extension = parts
        if entity in seen:
            raise LandingError(
                f"{single_line(delivery_dir.name)}: two files for entity {entity!r} "
                f"({single_line(seen[entity].name)} and {single_line(path.name)}); keep one"
            )
        seen[entity] = LandingFile(delivery_dir.name, entity, path, extension)
    return list(seen.values())


def _listed(folder: Path, what: str, or_else: str) -> list[Path]:
    """The entries of `folder`, sorted; a folder the job may not list (its permissions, or
    gone since it was seen) is a LandingError naming it: a delivery nobody can read may hold
    anything, so the run fails — at once, as for any unusable landing folder, not after the
    retries a passing problem gets."""
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise LandingError(
            f"{what} cannot be read ({exc.strerror or type(exc).__name__}): make it readable "
            f"by the job{or_else}"
        ) from exc


def _kind(path: Path) -> str:
    if path.is_dir():
        return "a folder"
    if path.is_file():
        return "a file"
    if path.is_symlink():
        return "a broken link"
    return "not a regular file"


def _entity_count(folder: Path) -> str:
    """For a hidden folder: how many entity files it holds, so the note says what is at stake."""
    return hidden_folder_holds(
        folder, lambda name: (parts := split_name(name)) is not None and parts[0] in ENTITIES,
        "entity", "loaded", "load",
    )


def hidden_folder_holds(
    folder: Path, wanted: Callable[[str], bool], kind: str, done: str, do: str
) -> str:
    """What a hidden folder's note adds: how many files it holds that `wanted` would have
    taken (`kind` files that were not `done`), and how to `do` them; "" when none (or it
    cannot be listed). The landing's scan and the source adapter's say it alike."""
    try:
        count = sum(1 for p in folder.iterdir() if wanted(p.name))
    except OSError:
        return ""
    if not count:
        return ""
    return (f" — it holds {count} {kind} file(s) that were NOT {done}; rename the folder "
            f"without the leading dot to {do} it")
