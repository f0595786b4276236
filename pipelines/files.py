"""Files written whole or not at all, and small JSON records read forgivingly: for the pages a
browser reads, the run's records (pipelines/no_op.py) and the publication's ready marker
(pipelines/publish.py). Standard library only: the CLI's quick paths import it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str) -> Path:
    """Write `text` next to `path` and rename it into place, so a reader (a browser, a web
    server, the next run) never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json_object(path: Path) -> dict[str, object]:
    """A JSON object from `path`, or {} when there is none or it cannot be read (the records
    that use this are optimisations or promises checked again: without one, the caller does
    the whole work)."""
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}
