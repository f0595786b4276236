"""A night with nothing new costs seconds: no rebuild, no re-publication, no new run.

What a run's result depends on is fingerprinted: the landing files (path, size, change time
— a touched file counts as new; the loader's content hashes then skip what it already has),
the run's settings (thresholds, timezone, a pinned as_of), the engine, the target overrides,
and the project itself (the dbt models, seeds and macros and the check queries and suites: a new
release rebuilds). The first step of a run writes the fingerprint it started from; a
successful publication records it as the last published one. The CLI and the schedule ask
`nothing_new_since` before starting a run (the CLI's `--force` rebuilds anyway).

A run stopped after its dbt build (killed or stopped in the checks, the publication or the
site; blocked by a check) leaves a complete build of its inputs: the dbt step records it
(`mark_built`) once the whole project built in the run that loaded those inputs, and anything
that changes the build first takes the record away (the load's first step, the dbt step's
start). The CLI's next run over the same inputs then resumes from that build
(`complete_build_since`): the checks, the publication and the site, not the load and the build
again, which would make the same tables.
"""

from __future__ import annotations

import hashlib
import json

from pipelines.publish import published_database
from pipelines.settings import PROJECT_ROOT, Settings

# The job that resumes from a complete build: the nightly job's checks, publication and site
RESUME_JOB = "nightly_resume"
PENDING = ".run-fingerprint.json"
PUBLISHED = ".published-fingerprint.json"
BUILT = ".built-fingerprint.json"
_PROJECT_PARTS = ("dbt_project/models", "dbt_project/seeds", "dbt_project/macros",
                  "dbt_project/tests", "dbt_project/dbt_project.yml", "expectations/queries",
                  "expectations/suites")


def run_fingerprint(settings: Settings) -> str:
    """What the next run's result depends on, as one digest."""
    source = settings.extracts_dir
    landing = sorted(
        (str(path.relative_to(source)), stat.st_size, stat.st_mtime_ns)
        for path in source.rglob("*") if path.is_file()
        for stat in [path.stat()]
    ) if source.is_dir() else []
    overrides = settings.target_overrides_file
    state = {
        "landing": landing,
        "source_mapping": settings.source_mapping,
        "settings": settings.run_settings(),
        # the same marts from either engine, but a switch of engine is a rebuild
        "engine": settings.engine,
        "overrides": _digest(overrides.read_bytes()) if overrides.exists() else None,
        "project": project_digest(),
    }
    return _digest(json.dumps(state, sort_keys=True, default=str).encode())


def mark_run_started(settings: Settings, run_id: str | None = None) -> None:
    """The first step of a run: the fingerprint this run starts from (and by which run); the
    load that follows changes the raw layer, so no complete build is left to resume from."""
    settings.warehouse_dir.mkdir(parents=True, exist_ok=True)
    forget_build(settings)
    (settings.warehouse_dir / PENDING).write_text(
        json.dumps({"fingerprint": run_fingerprint(settings), "started_by": run_id}),
        encoding="utf-8",
    )


def forget_build(settings: Settings) -> None:
    """The build is about to change: no complete build is recorded any more."""
    (settings.warehouse_dir / BUILT).unlink(missing_ok=True)


def mark_built(settings: Settings, run_id: str) -> bool:
    """The whole dbt project built in run `run_id` over the inputs that run loaded: a run
    stopped after this point can be resumed from the build. Recorded only when `run_id` is
    the run whose first step wrote the fingerprint (a build on its own, e.g. of a few models
    in `dagster dev`, leaves nothing to resume from); True when recorded."""
    pending = settings.warehouse_dir / PENDING
    if not pending.exists():
        return False
    state = json.loads(pending.read_text(encoding="utf-8"))
    if state.get("started_by") != run_id:
        return False
    (settings.warehouse_dir / BUILT).write_text(
        json.dumps({"fingerprint": state["fingerprint"], "run_id": run_id}), encoding="utf-8"
    )
    return True


def require_complete_build(settings: Settings) -> str:
    """The first step of a resumed run: the build it audits and publishes must be a complete
    build of these inputs (a resume launched by hand in `dagster dev` on another or a partial
    build would publish it). Raises NothingToResume otherwise."""
    built = complete_build_since(settings)
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
    recorded = settings.warehouse_dir / BUILT
    if not recorded.exists() or not settings.build_database.exists():
        return None
    state = json.loads(recorded.read_text(encoding="utf-8"))
    if state.get("fingerprint") != run_fingerprint(settings):
        return None
    return str(state.get("run_id"))


def mark_published(settings: Settings, run_id: str) -> None:
    """A successful publication: its starting fingerprint is the last published one."""
    pending = settings.warehouse_dir / PENDING
    if not pending.exists():
        return
    state = json.loads(pending.read_text(encoding="utf-8"))
    (settings.warehouse_dir / PUBLISHED).write_text(
        json.dumps({"fingerprint": state["fingerprint"], "run_id": run_id}), encoding="utf-8"
    )


def nothing_new_since(settings: Settings) -> str | None:
    """The run id of the last publication when nothing it depended on has changed since."""
    recorded = settings.warehouse_dir / PUBLISHED
    if not recorded.exists() or not published_database(settings.warehouse_dir).exists():
        return None
    state = json.loads(recorded.read_text(encoding="utf-8"))
    if state.get("fingerprint") != run_fingerprint(settings):
        return None
    return str(state.get("run_id"))


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


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
