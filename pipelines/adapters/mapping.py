"""The source mapping: one YAML file saying how a CRM's export becomes the canonical extract.

It is read and checked whole before any data is touched, and every problem is reported with
the YAML key to fix (`entities.deals.columns.stage.map: ...`), so a newcomer can write one for
a CRM nobody has seen without reading code. The format is documented, with a worked example,
in docs/source-mapping.md; this module is its single definition.
"""

from __future__ import annotations

import codecs
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from pipelines.adapters.errors import MappingError
from pipelines.adapters.expressions import ExpressionError, expression_columns
from pipelines.contract import ENTITIES, ColumnType, Entity
from pipelines.ingest.landing import SOURCE_TRACE_COLUMNS, leaves_folder
from pipelines.ingest.validation import FALSE_WORDS, TRUE_WORDS

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
# Extra output columns every canonical row gets, for tracing it back to the source.
TRACE_COLUMNS = SOURCE_TRACE_COLUMNS
SOURCE_FORMATS = ("csv", "xlsx", "parquet", "jsonl")
ON_BAD = ("quarantine", "drop")
UNMAPPED = ("error", "keep", "null")
KEEP = ("first", "last")

_TOP_KEYS = ("source", "extends", "delivery_time", "vocabularies", "files", "entities")
_FILE_KEYS = (
    "glob", "format", "delimiter", "encoding", "decimal", "thousands", "timestamp_format",
    "filter", "exclude", "headers",
)
_PART_KEYS = ("from", "filter", "columns", "extra")
_ENTITY_KEYS = (*_PART_KEYS, "parts", "unique")
_SOURCE_KEYS = ("column", "expr", "const", "delivery_time")
_VALUE_KEYS = (
    *_SOURCE_KEYS, "aliases", "lookup", "map", "unmapped", "format", "if_unparsable",
    "decimal", "thousands", "default", "if_missing", "optional", "hint",
)
_LOOKUP_KEYS = ("file", "key", "value", "where", "ignore_case", "unmatched", "deliveries")
# Which deliveries a lookup sees: `this` one's file (else the latest earlier delivery's), or
# `all` up to this one (for delta exports, where a delivery holds only the changed rows).
LOOKUP_DELIVERIES = ("this", "all")
_WHITESPACE = re.compile(r"[\t\n\f\r ]+")


def normalize_label(text: str) -> str:
    """How vocabulary and alias keys are matched: trimmed, runs of spaces as one, lower case.
    (The SQL twin is `engine.label_sql`.)"""
    return _WHITESPACE.sub(" ", text.strip(" \t\n\f\r")).lower()


@dataclass(frozen=True)
class DeliveryTime:
    """Where a delivery's time comes from: its folder name (parsed with `format`) or the
    modification time of each source file (`mtime`)."""

    source: str
    format: str | None = None


@dataclass(frozen=True)
class FileSpec:
    """A kind of source file (`files.<key>`): how to find and read it."""

    key: str
    path: str
    globs: tuple[str, ...]
    format: str | None = None
    delimiter: str | None = None
    encoding: str = "utf-8"
    decimal: str = "."
    thousands: str | None = None
    timestamp_formats: tuple[str, ...] = ()
    filter: str | None = None
    filter_columns: tuple[str, ...] = ()
    # Names a file matching `globs` must not have (`deal-dealstage-history.csv` is no deals
    # export although it matches `*deals*`): file kinds are told apart by rule, not by luck.
    excludes: tuple[str, ...] = ()
    # Other spellings of a header (normalised label → the name the mapping uses): the same
    # export with labels or internal names, in English or Dutch, reads as one.
    headers: tuple[tuple[str, str], ...] = ()

    def matches(self, name: str) -> bool:
        """Whether a file of this name is one of this kind (case-insensitive)."""
        lowered = name.lower()
        return any(fnmatch.fnmatch(lowered, g.lower()) for g in self.globs) and not any(
            fnmatch.fnmatch(lowered, g.lower()) for g in self.excludes
        )


@dataclass(frozen=True)
class Operand:
    """A column or an expression over a file's columns (a lookup's key or value)."""

    kind: str  # column | expr
    text: str
    columns: tuple[str, ...]
    path: str


@dataclass(frozen=True)
class LookupSpec:
    """Replace the value by the `value` of the row of another file whose `key` equals it."""

    path: str
    file: str
    keys: tuple[Operand, ...]  # tried in order: the first key a value equals finds the row
    value: Operand
    where: str | None = None
    where_columns: tuple[str, ...] = ()
    ignore_case: bool = False
    unmatched: str = "error"
    deliveries: str = "this"


@dataclass(frozen=True)
class ValueSpec:
    """How one output column gets its value: a source, then the optional steps in order
    aliases → lookup → map → format → decimal → default."""

    path: str
    target: str
    column_type: ColumnType | None  # None: an extra column (no contract type)
    kind: str  # column | expr | const | delivery_time
    text: str
    columns: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    lookup: LookupSpec | None = None
    vocabulary: tuple[tuple[str, str], ...] | None = None
    unmapped: str = "error"
    formats: tuple[str, ...] = ()
    if_unparsable: str = "quarantine"
    decimal: str | None = None
    thousands: str | None = None
    default: ValueSpec | None = None
    if_missing: str = "quarantine"
    # `column:` only: the file may lack the column (a field some exports have, e.g. a custom
    # field of a preset); then the value is empty and the report notes it.
    optional: bool = False
    # An expression over the source row shown next to each value this column holds back (an
    # unmapped value, an unmatched lookup): what to add where, e.g. the pipelines-file line.
    hint: str | None = None
    hint_columns: tuple[str, ...] = ()

    def chain(self) -> list[ValueSpec]:
        """This spec and its defaults, outermost first."""
        return [self, *(self.default.chain() if self.default else [])]

    def describe_source(self) -> str:
        """Where the value comes from, as an operator finds it in the export and the mapping:
        `column Account (entities.contacts.columns.contact_id)`."""
        source = {
            "column": f"column {self.text}",
            "expr": f"expression {self.text}",
            "const": f"constant {self.text!r}",
        }.get(self.kind, "the delivery time")
        return f"{source} ({self.path})"


@dataclass(frozen=True)
class PartSpec:
    """One source of an entity's rows: a file kind, an optional filter, the columns."""

    path: str
    file: str
    filter: str | None
    filter_columns: tuple[str, ...]
    columns: dict[str, ValueSpec]
    extra: dict[str, ValueSpec]

    @property
    def values(self) -> list[ValueSpec]:
        return [*self.columns.values(), *self.extra.values()]


@dataclass(frozen=True)
class UniqueSpec:
    """Keep one row per key (e.g. one company per name from a list of deals)."""

    path: str
    key: tuple[str, ...]
    order_by: tuple[str, ...] = ()
    keep: str = "first"


@dataclass(frozen=True)
class EntityMap:
    name: str
    path: str
    parts: tuple[PartSpec, ...]
    unique: UniqueSpec | None = None

    @property
    def output_columns(self) -> tuple[str, ...]:
        """Mapped contract columns in contract order, then extras in order of appearance."""
        mapped = {name for part in self.parts for name in part.columns}
        contract = [c for c in ENTITIES[self.name].column_names if c in mapped]
        extras = [name for part in self.parts for name in part.extra]
        return (*contract, *dict.fromkeys(extras))

    @property
    def column_sources(self) -> dict[str, str]:
        """Output column → where its value comes from (each part's, when they differ): how
        the loader names the source of a value it quarantines."""
        sources: dict[str, list[str]] = {}
        for part in self.parts:
            for name, spec in (*part.columns.items(), *part.extra.items()):
                described = spec.describe_source()
                if described not in sources.setdefault(name, []):
                    sources[name].append(described)
        return {name: " or ".join(found) for name, found in sources.items()}


@dataclass(frozen=True)
class SourceMapping:
    name: str  # the YAML file's name, for messages
    path: Path
    title: str
    delivery_time: DeliveryTime | None
    files: dict[str, FileSpec]
    entities: dict[str, EntityMap] = field(default_factory=dict)

    def error(self, key: str, message: str) -> str:
        return f"{self.name}: {key}: {message}"


def resolve_mapping(source: str | Path) -> Path:
    """A mapping file path, or the name of a bundled preset (`salesforce`, `hubspot`)."""
    path = Path(source).expanduser()
    if path.is_file():
        return path.resolve()
    preset = PRESETS_DIR / f"{source}.yaml"
    if isinstance(source, str) and "/" not in source and preset.is_file():
        return preset
    presets = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")) if PRESETS_DIR.is_dir() else []
    raise MappingError(
        [f"{source}: no such mapping file, and no preset of that name "
         f"(presets: {', '.join(presets) or 'none'})"]
    )


def mapping_files(source: str | Path) -> list[Path]:
    """The files a mapping is read from: itself, then each file its `extends:` chain names
    (a preset's too) — what a run over this mapping depends on, whichever of them changed."""
    files: list[Path] = []
    path = resolve_mapping(source)
    while path not in files:
        _check_chain(path, tuple(files))
        files.append(path)
        base_name = _read_yaml(path).get("extends")
        if base_name is None:
            break
        path = _extends_path(path, base_name)
    return files


def load_mapping(source: str | Path) -> SourceMapping:
    """Read and check a mapping; raise MappingError listing every problem found."""
    path = resolve_mapping(source)
    document = _read_with_extends(path, ())
    with duckdb.connect() as con:
        parser = _Parser(path.name, con)
        mapping = parser.parse(path, document)
    if parser.errors:
        raise MappingError(parser.errors)
    return mapping


# A mapping is a page of YAML, and `extends:` a preset or two: far beyond either is no mapping
# (a chain of a thousand files ended in a RecursionError, which the run retried as a passing
# fault; a file of gigabytes would be read whole)
MAX_EXTENDS = 16
MAX_MAPPING_BYTES = 1 << 20


def _read_with_extends(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path in seen:
        raise MappingError([f"{path.name}: extends: circular ({' → '.join(p.name for p in seen)})"])
    _check_chain(path, seen)
    document = _read_yaml(path)
    base_name = document.pop("extends", None)
    if base_name is None:
        return document
    return _merge(_read_with_extends(_extends_path(path, base_name), (*seen, path)), document)


def _check_chain(path: Path, seen: tuple[Path, ...]) -> None:
    """Refuse a chain of `extends:` longer than MAX_EXTENDS, before reading `path`."""
    if len(seen) >= MAX_EXTENDS:
        raise MappingError([f"{seen[0].name}: extends: a chain of more than {MAX_EXTENDS} "
                            f"mapping files (…, {seen[-1].name}, {path.name}); shorten it"])


def _read_yaml(path: Path) -> dict[str, Any]:
    """One mapping file's keys (an empty file has none)."""
    try:
        if path.stat().st_size > MAX_MAPPING_BYTES:
            raise MappingError([f"{path.name}: larger than a mapping file may be "
                                f"({MAX_MAPPING_BYTES:,} bytes)"])
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except RecursionError as exc:  # PyYAML composes nested collections recursively
        raise MappingError([f"{path.name}: not a readable YAML file: nested too deeply"]) from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MappingError([f"{path.name}: not a readable YAML file: {exc}"]) from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise MappingError([f"{path.name}: the top level must be a mapping of keys"])
    return document


def _extends_path(path: Path, base_name: Any) -> Path:
    """Where `extends:` may reach: a file beside the mapping (a bare file name, not a link
    leading elsewhere) or a bundled preset by name. Never an absolute path or another folder:
    a mapping decides what SQL runs, so what it pulls in must be as visible as itself."""
    name = str(base_name)
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise MappingError([
            f"{path.name}: extends: {name!r} is not allowed; name a preset or a mapping "
            "file in the same folder as this one"
        ])
    beside = path.parent / name
    if beside.is_file():
        if leaves_folder(beside, path.parent):
            raise MappingError([f"{path.name}: extends: {name} is a link leading out of the "
                                "mapping's folder; refused"])
        return beside.resolve()
    preset = PRESETS_DIR / f"{name}.yaml"
    if preset.is_file():
        return preset
    presets = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
    raise MappingError([f"{path.name}: extends: {name}: no such mapping file beside this one, "
                        f"and no preset of that name (presets: {presets or 'none'})"])


def _merge(base: Any, override: Any) -> Any:
    """Deep merge: mappings merge key by key, anything else replaces; `~` (null) removes."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return override
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(base.get(key), value)
    return merged


class _Parser:
    """Turns the YAML document into the dataclasses above, collecting every error."""

    def __init__(self, name: str, con: duckdb.DuckDBPyConnection) -> None:
        self.name = name
        self.con = con
        self.errors: list[str] = []
        self.vocabularies: dict[str, Any] = {}
        self.delivery_time: DeliveryTime | None = None
        self.files: dict[str, FileSpec] = {}

    # --- helpers ---------------------------------------------------------------------------

    def error(self, key: str, message: str) -> None:
        self.errors.append(f"{self.name}: {key}: {message}")

    def mapping(self, node: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any] | None:
        if not isinstance(node, dict):
            self.error(key, f"expected a mapping with keys from: {', '.join(allowed)}")
            return None
        for name in node:
            if name not in allowed:
                self.error(f"{key}.{name}", f"unknown key (expected one of: {', '.join(allowed)})")
        return node

    def text(self, node: Any, key: str) -> str | None:
        if isinstance(node, bool):
            return "true" if node else "false"
        if isinstance(node, (str, int, float)) or hasattr(node, "isoformat"):
            return str(node)
        self.error(key, "expected a single value (text or number)")
        return None

    def policy(self, node: dict[str, Any], name: str, key: str, options: tuple[str, ...],
               default: str) -> str:
        """An option's value; a YAML `null` (unquoted) means the option `null`."""
        if name in node and node[name] is None and "null" in options:
            return "null"
        return self.choice(node.get(name), f"{key}.{name}", options, default)

    def choice(self, node: Any, key: str, options: tuple[str, ...], default: str) -> str:
        if node is None:
            return default
        value = str(node).lower()
        if value not in options:
            self.error(key, f"{node!r} is not one of: {', '.join(options)}")
            return default
        return value

    def expression(self, node: Any, key: str) -> tuple[str, tuple[str, ...]] | None:
        if not isinstance(node, str):
            self.error(key, "expected an SQL expression (text)")
            return None
        try:
            return node, expression_columns(self.con, node)
        except ExpressionError as exc:
            self.error(key, str(exc))
            return None

    def formats(self, node: Any, key: str) -> tuple[str, ...]:
        items = node if isinstance(node, list) else [node]
        found: list[str] = []
        for position, item in enumerate(items):
            item_key = f"{key}[{position}]" if isinstance(node, list) else key
            if not isinstance(item, str) or not item:
                self.error(item_key, "expected a strptime format such as '%d-%m-%Y %H:%M'")
                continue
            try:
                self.con.execute("select try_strptime('', ?)", [item]).fetchall()
            except duckdb.Error as exc:
                self.error(item_key, f"invalid strptime format {item!r}: {_first_line(exc)}")
                continue
            found.append(item)
        return tuple(found)

    def vocabulary(
        self, node: Any, key: str, column_type: ColumnType | None, entity: Entity | None,
        target: str, check_values: bool,
    ) -> tuple[tuple[str, str], ...]:
        if isinstance(node, str):
            if node not in self.vocabularies:
                self.error(key, f"no vocabulary {node!r} under vocabularies "
                                f"(known: {', '.join(self.vocabularies) or 'none'})")
                return ()
            return self.vocabulary(
                self.vocabularies[node], key, column_type, entity, target, check_values
            )
        if not isinstance(node, dict) or not node:
            self.error(key, "expected a mapping of source value: output value "
                            "(or the name of an entry under vocabularies)")
            return ()
        pairs: dict[str, tuple[str, str]] = {}
        for raw_key, raw_value in node.items():
            if isinstance(raw_key, bool) or raw_key is None:
                self.error(key, f"key {raw_key!r} is not text: quote it (YAML reads yes/no/on/"
                                "off/true/false/~ unquoted as booleans or null)")
                continue
            value = self.text(raw_value, f"{key}.{raw_key}")
            if value is None:
                continue
            if check_values:
                self.check_value(value, f"{key}.{raw_key}", column_type, entity, target)
            label = normalize_label(str(raw_key))
            if label in pairs and pairs[label][1] != value:
                self.error(key, f"keys {pairs[label][0]!r} and {raw_key!r} are the same label "
                                "(matching ignores case and repeated spaces) but map differently")
                continue
            pairs[label] = (str(raw_key), value)
        return tuple((label, value) for label, (_, value) in pairs.items())

    def check_value(
        self, value: str, key: str, column_type: ColumnType | None, entity: Entity | None,
        target: str,
    ) -> None:
        """A constant or vocabulary value must be valid for the contract column it lands in."""
        if entity is None or column_type is None or value == "":
            return  # "" in a vocabulary: the value deliberately maps to no value
        column = entity.column(target)
        if column_type == "enum" and value.strip().lower() not in column.enum:
            self.error(key, f"{value!r} is not a value of {entity.name}.{target} "
                            f"(expected one of: {', '.join(column.enum)})")
        if column_type == "boolean" and value.strip().lower() not in (*TRUE_WORDS, *FALSE_WORDS):
            self.error(key, f"{value!r} is not a boolean (true/false, 1/0, yes/no, y/n)")

    # --- the document ----------------------------------------------------------------------

    def parse(self, path: Path, document: dict[str, Any]) -> SourceMapping:
        for name in document:
            if name not in _TOP_KEYS:
                self.error(name, f"unknown key (expected one of: {', '.join(_TOP_KEYS)})")
        title = str(document.get("source") or path.stem)
        self.delivery_time = self.parse_delivery_time(document.get("delivery_time"))
        vocabularies = document.get("vocabularies") or {}
        if not isinstance(vocabularies, dict):
            self.error("vocabularies", "expected a mapping of name: {source value: output value}")
        else:
            self.vocabularies = vocabularies
        files = document.get("files")
        if not isinstance(files, dict) or not files:
            self.error("files", "expected a mapping of file key: {glob: ..., ...}")
            files = {}
        for key, node in files.items():
            spec = self.parse_file(str(key), node)
            if spec is not None:
                self.files[str(key)] = spec
        entities: dict[str, EntityMap] = {}
        nodes = document.get("entities")
        if not isinstance(nodes, dict) or not nodes:
            self.error("entities", "expected a mapping of canonical entity: its mapping "
                                   f"(entities: {', '.join(ENTITIES)})")
            nodes = {}
        for name, node in nodes.items():
            if name not in ENTITIES:
                self.error(f"entities.{name}", f"not a canonical entity "
                                               f"(expected one of: {', '.join(ENTITIES)})")
                continue
            entity_map = self.parse_entity(ENTITIES[name], node)
            if entity_map is not None:
                entities[name] = entity_map
        return SourceMapping(self.name, path, title, self.delivery_time, self.files, entities)

    def parse_delivery_time(self, node: Any) -> DeliveryTime | None:
        if node is None:
            return None
        node = self.mapping(node, "delivery_time", ("from", "format"))
        if node is None:
            return None
        source = self.choice(node.get("from"), "delivery_time.from", ("folder", "mtime"), "")
        if source == "folder":
            fmt = node.get("format")
            if not isinstance(fmt, str) or not fmt:
                self.error("delivery_time.format", "a folder name needs a strptime format "
                                                   "(e.g. '%Y-%m-%dT%H%M' for 2026-11-26T0200)")
                return None
            return DeliveryTime("folder", fmt)
        if source == "mtime":
            return DeliveryTime("mtime")
        if not source:
            self.error("delivery_time.from", "expected folder or mtime")
        return None

    def parse_file(self, key: str, node: Any) -> FileSpec | None:
        path = f"files.{key}"
        node = self.mapping(node, path, _FILE_KEYS)
        if node is None:
            return None
        globs = node.get("glob")
        globs = [globs] if isinstance(globs, str) else globs
        if not isinstance(globs, list) or not globs or not all(isinstance(g, str) for g in globs):
            self.error(f"{path}.glob", "expected a file name pattern such as 'deals*.csv' "
                                       "(or a list of them)")
            globs = []
        elif pathlike := [g for g in globs if "/" in g or "\\" in g]:
            # a glob is matched against the names of a delivery folder's files: a path can
            # match none of them, and the entity would load nothing without a word
            self.error(f"{path}.glob", f"{pathlike[0]!r} is a path; a glob matches the file "
                                       "names inside each delivery folder (e.g. 'Account*.csv')")
            globs = []
        file_format = node.get("format")
        if file_format is not None and file_format not in SOURCE_FORMATS:
            self.error(f"{path}.format", f"{file_format!r} is not one of: "
                                         f"{', '.join(SOURCE_FORMATS)}")
            file_format = None
        delimiter = node.get("delimiter")
        if delimiter is not None:
            delimiter = "\t" if delimiter in ("tab", "\\t") else delimiter
            if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
                self.error(f"{path}.delimiter", "expected one character (or tab)")
                delimiter = None
        encoding = str(node.get("encoding") or "utf-8")
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            self.error(f"{path}.encoding", f"unknown encoding {encoding!r} "
                                           "(e.g. utf-8, cp1252, latin-1, utf-16)")
            encoding = "utf-8"
        decimal = str(node.get("decimal") or ".")
        thousands = node.get("thousands")
        decimal, thousands = self.number_format(decimal, thousands, path)
        formats = self.formats(node["timestamp_format"], f"{path}.timestamp_format") if (
            "timestamp_format" in node) else ()
        filter_sql, filter_columns = None, ()
        if node.get("filter") is not None:
            parsed = self.expression(node["filter"], f"{path}.filter")
            if parsed:
                filter_sql, filter_columns = parsed
        excludes = node.get("exclude") or []
        excludes = [excludes] if isinstance(excludes, str) else excludes
        if not isinstance(excludes, list) or not all(isinstance(g, str) for g in excludes):
            self.error(f"{path}.exclude", "expected a file name pattern (or a list of them)")
            excludes = []
        headers = self.headers(node["headers"], f"{path}.headers") if "headers" in node else ()
        return FileSpec(
            key, path, tuple(globs), file_format, delimiter, encoding, decimal, thousands,
            formats, filter_sql, filter_columns, tuple(excludes), headers,
        )

    def headers(self, node: Any, key: str) -> tuple[tuple[str, str], ...]:
        """`headers:` a vocabulary (or a list of vocabularies, by name or inline) of other
        header spellings → the name the mapping uses; later ones win."""
        items = node if isinstance(node, list) else [node]
        pairs: dict[str, str] = {}
        for position, item in enumerate(items):
            item_key = f"{key}[{position}]" if isinstance(node, list) else key
            pairs.update(self.vocabulary(item, item_key, None, None, "", False))
        return tuple(pairs.items())

    def number_format(self, decimal: str, thousands: Any, path: str) -> tuple[str, str | None]:
        if decimal not in (".", ","):
            self.error(f"{path}.decimal", "expected '.' or ','")
            decimal = "."
        if thousands is not None:
            thousands = str(thousands)
            if thousands not in (".", ",", " ", "'") or thousands == decimal:
                self.error(f"{path}.thousands", "expected one of '.', ',', ' ' or \"'\", "
                                                "other than the decimal separator")
                thousands = None
        return decimal, thousands

    def parse_entity(self, entity: Entity, node: Any) -> EntityMap | None:
        path = f"entities.{entity.name}"
        node = self.mapping(node, path, _ENTITY_KEYS)
        if node is None:
            return None
        parts: list[PartSpec] = []
        if "parts" in node:
            for stray in (k for k in _PART_KEYS if k in node):
                self.error(f"{path}.{stray}", "with parts, give this inside each part")
            items = node["parts"]
            if not isinstance(items, list) or not items:
                self.error(f"{path}.parts", "expected a list of parts (each with from, columns)")
                items = []
            for position, item in enumerate(items):
                part_path = f"{path}.parts[{position}]"
                item = self.mapping(item, part_path, _PART_KEYS)
                if item is not None:
                    part = self.parse_part(entity, item, part_path)
                    if part is not None:
                        parts.append(part)
        else:
            part = self.parse_part(entity, node, path)
            if part is not None:
                parts.append(part)
        if not parts:
            return None
        entity_map = EntityMap(entity.name, path, tuple(parts))
        if node.get("unique") is not None:
            unique = self.parse_unique(node["unique"], f"{path}.unique", entity_map)
            entity_map = EntityMap(entity.name, path, tuple(parts), unique)
        return entity_map

    def parse_part(self, entity: Entity, node: dict[str, Any], path: str) -> PartSpec | None:
        file_key = node.get("from")
        if not isinstance(file_key, str) or file_key not in self.files:
            self.error(f"{path}.from", f"{file_key!r} is not a key under files "
                                       f"(files: {', '.join(self.files) or 'none'})")
            return None
        filter_sql, filter_columns = None, ()
        if node.get("filter") is not None:
            parsed = self.expression(node["filter"], f"{path}.filter")
            if parsed:
                filter_sql, filter_columns = parsed
        columns: dict[str, ValueSpec] = {}
        column_nodes = node.get("columns")
        if not isinstance(column_nodes, dict) or not column_nodes:
            self.error(f"{path}.columns", "expected a mapping of canonical column: source")
            column_nodes = {}
        for target, value_node in column_nodes.items():
            key = f"{path}.columns.{target}"
            if target not in entity.column_names:
                self.error(key, f"not a column of {entity.name} "
                                f"(columns: {', '.join(entity.column_names)})")
                continue
            spec = self.parse_value(value_node, key, entity, target)
            if spec is not None:
                columns[target] = spec
        missing = [c for c in entity.present_columns if c not in column_nodes]
        if missing and column_nodes:
            self.error(f"{path}.columns", f"{', '.join(missing)} not mapped: the contract "
                                          f"requires {entity.name} files to carry "
                                          f"{'them' if len(missing) > 1 else 'it'}")
        extra: dict[str, ValueSpec] = {}
        extra_nodes = node.get("extra") or {}
        if not isinstance(extra_nodes, dict):
            self.error(f"{path}.extra", "expected a mapping of extra column name: source")
            extra_nodes = {}
        taken = {c.lower() for c in (*entity.column_names, *TRACE_COLUMNS)}
        for target, value_node in extra_nodes.items():
            key = f"{path}.extra.{target}"
            if str(target).lower() in taken:
                self.error(key, f"{target!r} is a canonical or trace column; map it under "
                                "columns, or choose another name")
                continue
            spec = self.parse_value(value_node, key, None, str(target))
            if spec is not None:
                extra[str(target)] = spec
        return PartSpec(path, file_key, filter_sql, filter_columns, columns, extra)

    def parse_value(
        self, node: Any, key: str, entity: Entity | None, target: str
    ) -> ValueSpec | None:
        column_type = entity.column(target).type if entity is not None else None
        if isinstance(node, str):
            return ValueSpec(key, target, column_type, "column", node, (node,))
        if not isinstance(node, dict):
            self.error(key, "expected a source column name, or a mapping with one of "
                            f"{', '.join(_SOURCE_KEYS)} (a number or boolean needs const:)")
            return None
        node = self.mapping(node, key, _VALUE_KEYS)
        assert node is not None
        sources = [k for k in _SOURCE_KEYS if k in node]
        if len(sources) != 1:
            self.error(key, f"give exactly one of {', '.join(_SOURCE_KEYS)} "
                            f"(found: {', '.join(sources) or 'none'})")
            return None
        kind = sources[0]
        text, columns = "", ()
        if kind == "column":
            if not isinstance(node["column"], str) or not node["column"]:
                self.error(f"{key}.column", "expected a source column name")
                return None
            text, columns = node["column"], (node["column"],)
        elif kind == "expr":
            parsed = self.expression(node["expr"], f"{key}.expr")
            if parsed is None:
                return None
            text, columns = parsed
        elif kind == "const":
            value = self.text(node["const"], f"{key}.const")
            if value is None:
                return None
            self.check_value(value, f"{key}.const", column_type, entity, target)
            text = value
        elif kind == "delivery_time":
            if node["delivery_time"] is not True:
                self.error(f"{key}.delivery_time", "expected true")
            if self.delivery_time is None:
                self.error(f"{key}.delivery_time", "the mapping has no top-level delivery_time "
                                                   "(e.g. delivery_time: {from: folder, format: "
                                                   "'%Y-%m-%dT%H%M'})")
        aliases = self.vocabulary(node["aliases"], f"{key}.aliases", column_type, entity,
                                  target, False) if "aliases" in node else ()
        lookup = self.parse_lookup(node["lookup"], f"{key}.lookup") if "lookup" in node else None
        vocabulary = self.vocabulary(node["map"], f"{key}.map", column_type, entity, target,
                                     True) if "map" in node else None
        unmapped = self.policy(node, "unmapped", key, UNMAPPED, "error")
        if "unmapped" in node and "map" not in node:
            self.error(f"{key}.unmapped", "only applies with map")
        formats: tuple[str, ...] = ()
        if "format" in node:
            if column_type not in (None, "timestamp"):
                self.error(f"{key}.format", f"only timestamp columns take a format "
                                            f"({target} is {column_type})")
            formats = self.formats(node["format"], f"{key}.format")
        if_unparsable = self.choice(node.get("if_unparsable"), f"{key}.if_unparsable", ON_BAD,
                                    "quarantine")
        decimal, thousands = None, None
        if "decimal" in node or "thousands" in node:
            if column_type not in (None, "decimal", "integer"):
                self.error(f"{key}.decimal", f"only number columns take decimal/thousands "
                                             f"({target} is {column_type})")
            decimal, thousands = self.number_format(
                str(node.get("decimal") or "."), node.get("thousands"), key
            )
        default = None
        if "default" in node:
            default_node = node["default"]
            if not isinstance(default_node, dict):
                default_node = {"const": default_node}
            if "if_missing" in default_node:
                self.error(f"{key}.default.if_missing", "give if_missing on the column itself")
            default = self.parse_value(default_node, f"{key}.default", entity, target)
        if_missing = self.choice(node.get("if_missing"), f"{key}.if_missing", ON_BAD,
                                 "quarantine")
        optional = node.get("optional", False)
        if not isinstance(optional, bool) or (optional and kind != "column"):
            self.error(f"{key}.optional", "expected true or false, with column:")
            optional = False
        hint, hint_columns = None, ()
        if node.get("hint") is not None:
            parsed_hint = self.expression(node["hint"], f"{key}.hint")
            if parsed_hint:
                hint, hint_columns = parsed_hint
        return ValueSpec(
            key, target, column_type, kind, text, columns, aliases, lookup, vocabulary,
            unmapped, formats, if_unparsable, decimal, thousands, default, if_missing,
            optional, hint, hint_columns,
        )

    def parse_lookup(self, node: Any, key: str) -> LookupSpec | None:
        node = self.mapping(node, key, _LOOKUP_KEYS)
        if node is None:
            return None
        file_key = node.get("file")
        if not isinstance(file_key, str) or file_key not in self.files:
            self.error(f"{key}.file", f"{file_key!r} is not a key under files "
                                      f"(files: {', '.join(self.files) or 'none'})")
            return None
        key_nodes = node.get("key")
        listed = isinstance(key_nodes, list)
        keys = []
        for position, key_node in enumerate(key_nodes if listed and key_nodes else [key_nodes]):
            operand = self.parse_operand(key_node, f"{key}.key[{position}]" if listed
                                         else f"{key}.key")
            if operand is None:
                return None
            keys.append(operand)
        value = self.parse_operand(node.get("value"), f"{key}.value")
        if value is None:
            return None
        where, where_columns = None, ()
        if node.get("where") is not None:
            parsed = self.expression(node["where"], f"{key}.where")
            if parsed:
                where, where_columns = parsed
        ignore_case = node.get("ignore_case", False)
        if not isinstance(ignore_case, bool):
            self.error(f"{key}.ignore_case", "expected true or false")
            ignore_case = False
        unmatched = self.policy(node, "unmatched", key, UNMAPPED, "error")
        deliveries = self.choice(node.get("deliveries"), f"{key}.deliveries",
                                 LOOKUP_DELIVERIES, "this")
        return LookupSpec(key, file_key, tuple(keys), value, where, where_columns,
                          ignore_case, unmatched, deliveries)

    def parse_operand(self, node: Any, key: str) -> Operand | None:
        if isinstance(node, str) and node:
            return Operand("column", node, (node,), key)
        if isinstance(node, dict) and set(node) == {"expr"}:
            parsed = self.expression(node["expr"], f"{key}.expr")
            return Operand("expr", *parsed, key) if parsed else None
        self.error(key, "expected a column name of the lookup file, or {expr: ...}")
        return None

    def parse_unique(self, node: Any, key: str, entity_map: EntityMap) -> UniqueSpec | None:
        if isinstance(node, (str, list)):
            node = {"key": node}
        node = self.mapping(node, key, ("key", "order_by", "keep"))
        if node is None:
            return None
        names: dict[str, tuple[str, ...]] = {}
        for name in ("key", "order_by"):
            value = node.get(name) or []
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self.error(f"{key}.{name}", "expected an output column name or a list of them")
                value = []
            for column in value:
                if column not in entity_map.output_columns:
                    self.error(f"{key}.{name}", f"{column!r} is not a mapped column "
                                                f"({', '.join(entity_map.output_columns)})")
            names[name] = tuple(value)
        if not names["key"]:
            self.error(f"{key}.key", "name the column(s) that identify a row")
            return None
        keep = self.choice(node.get("keep"), f"{key}.keep", KEEP, "first")
        return UniqueSpec(key, names["key"], names["order_by"], keep)


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), str(exc))

