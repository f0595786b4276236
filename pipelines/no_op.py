"""A night with nothing new costs seconds: no rebuild, no re-publication, no new run.

What a run's result depends on is fingerprinted: the landing files (path, size, modification
and change time — a touched or replaced file counts as new; the loader's content hashes then
skip what it already has), a source mapping's content, the run's settings (thresholds,
timezone, a pinned as_of), the engine, the target overrides, and the project itself
(the dbt models, seeds, macros and profiles and the check queries and suites: a new release
rebuilds). The first step of a run writes the fingerprint it started from; a
successful publication records it as the last published one. The CLI and the schedule ask
`nothing_new_since` before starting a run (the CLI's `--force` rebuilds anyway).

A run stopped after its dbt build and before its publication (killed or stopped in the
checks or the publication; blocked by a check) leaves a complete build of its inputs: the dbt
step records it (`mark_built`) once the whole project built in the run whose raw steps all
loaded those inputs (`mark_loaded`), and anything that changes the build first takes the
record away (the load's first step, the dbt step's start). The CLI's next run over the same
inputs then resumes from that build (`complete_build_since`): the checks, the publication and
the site, not the load and the build again, which would make the same tables.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from pipelines.contract import ENTITY_NAMES
from pipelines.files import read_json_object, write_atomically
from pipelines.publish import published_database
from pipelines.settings import PROJECT_ROOT, Settings

# The job that resumes from a complete build: the nightly job's checks, publication and site
RESUME_JOB = "nightly_resume"
PENDING = ".run-fingerprint.json"
PUBLISHED = ".published-fingerprint.json"
BUILT = ".built-fingerprint.json"
# The build record's format: a record of another format (an older release's) is not trusted
BUILT_FORMAT = 2
# What a run loads before its build: every entity of the contract and the target overrides
# (the raw steps, pipelines/assets/raw.py); a build is complete only after all of them
LOADED_PARTS = (*ENTITY_NAMES, "target_overrides")
_PROJECT_PARTS = ("dbt_project/models", "dbt_project/seeds", "dbt_project/macros",
                  "dbt_project/tests", "dbt_project/dbt_project.yml", "dbt_project/profiles.yml",
                  "expectations/queries", "expectations/suites")


def run_fingerprint(settings: Settings) -> str:
    """What the next run's result depends on, as one digest."""
    overrides = settings.target_overrides_file
    state = {
        "landing": landing_state(settings.extracts_dir),
        "source_mapping": _mapping_state(settings.source_mapping),
        # a pinned as_of by its instant: `…T22:59:59Z` and `…T23:59:59+01:00` are one night
        "settings": {**settings.run_settings(), "as_of": _instant(settings.as_of)},
        # the same marts from either engine, but a switch of engine is a rebuild
        "engine": settings.engine,
        "overrides": _digest(overrides.read_bytes()) if overrides.exists() else None,
        "project": project_digest(),
    }
    return _digest(json.dumps(state, sort_keys=True, default=str).encode())


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def landing_state(source: Path) -> list[tuple[object, ...]]:
    """Each entry of the landing (or export) folder a run would read — every delivery
    folder's entries, and anything directly in the folder — by path, size, modification time
    and change time. The change time is the kernel's: a file replaced by one of the same size
    with its modification time set back (`cp -p`, `tar x`, `touch -r`) still counts as new.
    Delivery folders are followed through links, as the scans do (a link leading out is
    refused by the load itself); names starting with a dot are left out, as the scans ignore
    them by rule. An entry that vanishes while it is looked at counts as changed."""
    if not source.is_dir():
        return []
    entries: list[tuple[object, ...]] = []
    for delivery in sorted(source.iterdir()):
        if delivery.name.startswith("."):
            continue
        try:
            inside = sorted(delivery.iterdir()) if delivery.is_dir() else [delivery]
        except OSError as exc:  # a folder that cannot be listed, or is gone meanwhile
            entries.append((delivery.name, "unreadable", type(exc).__name__))
            continue
        entries += [_entry_state(path, source) for path in inside
                    if not path.name.startswith(".")]
    return entries


def _entry_state(path: Path, source: Path) -> tuple[object, ...]:
    name = str(path.relative_to(source))
    try:
        found = path.stat()
    except OSError as exc:  # gone, or a link to nowhere: not what was published
        return (name, "unreadable", type(exc).__name__)
    return (name, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


def _mapping_state(source_mapping: str | None) -> object:
    """A source mapping by its content, its `extends:` chain merged in (a preset's too): an
    edited mapping is a new night, not the path of the same file again."""
    if not source_mapping:
        return None
    from pipelines.adapters.mapping import MappingError, mapping_files

    try:
        files = mapping_files(source_mapping)
        return {"mapping": source_mapping,
                "files": [[path.name, _digest(path.read_bytes())] for path in files]}
    except (MappingError, OSError, ValueError) as exc:  # the run will say what is wrong
        return {"mapping": source_mapping, "unreadable": str(exc)}


def mark_run_started(settings: Settings, run_id: str | None = None) -> None:
    """The first step of a run: the fingerprint this run starts from (and by which run); the
    load that follows changes the raw layer, so no complete build is left to resume from."""
    settings.warehouse_dir.mkdir(parents=True, exist_ok=True)
    forget_build(settings)
    _write_record(settings.warehouse_dir / PENDING,
           {"fingerprint": run_fingerprint(settings), "started_by": run_id})


def forget_build(settings: Settings) -> None:
    """The build is about to change: no complete build is recorded any more."""
    (settings.warehouse_dir / BUILT).unlink(missing_ok=True)


def mark_loaded(settings: Settings, run_id: str, part: str) -> None:
    """A raw step of run `run_id` loaded its part (an entity, the overrides) to the end."""
    state = read_json_object(settings.warehouse_dir / PENDING)
    if state.get("started_by") != run_id:
        return
    loaded = sorted({*_strings(state.get("loaded")), part})
    _write_record(settings.warehouse_dir / PENDING, {**state, "loaded": loaded})


def mark_built(settings: Settings, run_id: str) -> bool:
    """The whole dbt project built in run `run_id` over the inputs that run loaded: a run
    stopped after this point can be resumed from the build. Recorded only when `run_id` is
    the run whose first step wrote the fingerprint and whose raw steps all loaded to the end
    (a build on its own, or a run of a few of the job's steps in `dagster dev`, leaves nothing
    to resume from); True when recorded."""
    state = read_json_object(settings.warehouse_dir / PENDING)
    if state.get("started_by") != run_id or not state.get("fingerprint"):
        return False
    if not set(LOADED_PARTS) <= set(_strings(state.get("loaded"))):
        return False
    _write_record(settings.warehouse_dir / BUILT, {
        "format": BUILT_FORMAT, "fingerprint": state["fingerprint"], "run_id": run_id,
        # a Spark build is read through absolute paths (its catalog, the build's views)
        "warehouse": str(settings.warehouse_dir.resolve()),
    })
    return True


def require_complete_build(settings: Settings, *, same_inputs: bool = True) -> str:
    """A step of a resumed run: the build it audits and publishes must be a complete build of
    these inputs (a resume launched by hand in `dagster dev` on another or a partial build
    would publish it). Its checks ask that of the landing folder as it is; its publication
    (`same_inputs=False`) only that the build is still the recorded one — a delivery landing
    during the checks is the next night's, as in any run. Raises NothingToResume otherwise."""
    built = complete_build_since(settings) if same_inputs else recorded_build(settings)
    if built is None:
        raise NothingToResume(
            f"nothing to resume from in {settings.warehouse_dir}: its build is not a complete "
            "build of these landing files and settings (run the nightly job)"
        )
    return built


class NothingToResume(RuntimeError):
    """A resumed run found no complete build of its inputs."""


def complete_build_since(settings: Settings) -> str | None:
    """The run id of the build the warehouse holds when it is a complete build of exactly
    what the next run would build (the same files, settings, engine, overrides and
    project), else None."""
    state = _build_record(settings)
    if state is None or state.get("fingerprint") != run_fingerprint(settings):
        return None
    return str(state["run_id"])


def recorded_build(settings: Settings) -> str | None:
    """The run id of the complete build the warehouse records (of whatever inputs), if its
    build is there to be read."""
    state = _build_record(settings)
    return None if state is None else str(state["run_id"])


def _build_record(settings: Settings) -> dict[str, object] | None:
    """The build record when it is of this release's format and its build is there to be
    read: a DuckDB build is one file of its own, whole wherever the warehouse is copied to; a
    Spark build names its tables by absolute path, so it counts only where it was made."""
    state = read_json_object(settings.warehouse_dir / BUILT)
    if state.get("format") != BUILT_FORMAT or not state.get("run_id"):
        return None
    if not settings.build_database.exists():
        return None
    moved = state.get("warehouse") != str(settings.warehouse_dir.resolve())
    if settings.engine == "spark" and moved:
        return None
    return state


def mark_published(settings: Settings, run_id: str) -> None:
    """A successful publication of run `run_id`: the fingerprint its build was made from is
    the last published one — the fingerprint its own first step wrote, or that of the
    complete build the warehouse records for the run that wrote it (a resumed run; a failed
    publication re-executed in the UI, which is a run of its own). A publication of some
    other build (materialized alone in `dagster dev` after a run that failed before its build
    was complete) vouches for no fingerprint: the record is removed, so the next night builds
    again instead of finding "nothing new"."""
    state = read_json_object(settings.warehouse_dir / PENDING)
    fingerprint = state.get("fingerprint")
    started_by = state.get("started_by")
    built = _build_record(settings)
    ours = started_by == run_id or (
        built is not None and built.get("run_id") == started_by
        and built.get("fingerprint") == fingerprint
    )
    if not fingerprint or not ours:
        (settings.warehouse_dir / PUBLISHED).unlink(missing_ok=True)
        return
    _write_record(settings.warehouse_dir / PUBLISHED,
                  {"fingerprint": fingerprint, "run_id": run_id})


def nothing_new_since(settings: Settings) -> str | None:
    """The run id of the last publication when nothing it depended on has changed since."""
    state = read_json_object(settings.warehouse_dir / PUBLISHED)
    if not state.get("run_id") or not published_database(settings.warehouse_dir).exists():
        return None
    if state.get("fingerprint") != run_fingerprint(settings):
        return None
    return str(state["run_id"])


def project_digest(parts: tuple[str, ...] = _PROJECT_PARTS) -> str:
    """A digest of the project's files under `parts` (paths relative to the project root)."""
    digest = hashlib.sha256()
    for part in parts:
        root = PROJECT_ROOT / part
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _write_record(path: Path, state: dict[str, object]) -> None:
    """A record written beside and renamed into place: a run killed while writing it leaves
    the previous record or none, never half of one."""
    write_atomically(path, json.dumps(state))


def _strings(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
