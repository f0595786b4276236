"""Source adapters: a CRM's own export → the canonical landing the loader reads.

A declarative mapping (YAML; docs/source-mapping.md) says which export files feed which
canonical entity and how each column is made. `adapt_source` runs it over a source folder of
deliveries and writes a canonical landing folder, so everything downstream keeps reading only
the canonical contract. Presets for well-known CRMs live in `presets/` as mappings too.
"""

from pipelines.adapters.engine import (
    MARKER_FILE,
    REPORT_JSON_FILE,
    REPORT_TEXT_FILE,
    adapt_source,
    source_files,
)
from pipelines.adapters.errors import AdapterError, MappingError, SourceFileError
from pipelines.adapters.mapping import PRESETS_DIR, SourceMapping, load_mapping, resolve_mapping
from pipelines.adapters.report import CONSEQUENCES, AdapterReport, EntityReport, Problem

__all__ = [
    "CONSEQUENCES",
    "MARKER_FILE",
    "PRESETS_DIR",
    "REPORT_JSON_FILE",
    "REPORT_TEXT_FILE",
    "AdapterError",
    "AdapterReport",
    "EntityReport",
    "MappingError",
    "Problem",
    "SourceFileError",
    "SourceMapping",
    "adapt_source",
    "load_mapping",
    "resolve_mapping",
    "source_files",
]
