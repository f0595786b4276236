"""The canonical CRM extract (contract v1), restated as data.

Everything the loader validates is declared here, so that the rules an auditor reads in the
README and the rules the code applies are the same table. One `Entity` per file kind; one
`Column` per contract column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["string", "enum", "boolean", "timestamp", "integer", "decimal", "month"]

CONTRACT_VERSION = "v1"
FILE_EXTENSIONS = ("csv.gz", "csv", "parquet", "jsonl", "xlsx")
# Size limits of the input (contract rules, not library defaults, so every message can name the
# limit that was hit). A value longer than MAX_FIELD_CHARACTERS is a bad value: its row is
# quarantined, naming line and column. A CSV line (one record) longer than MAX_LINE_BYTES
# cannot be read safely at all: the file is rejected, naming line, column and the limit.
MAX_FIELD_CHARACTERS = 65_536
MAX_LINE_BYTES = 1_048_576
# An xlsx sheet is read up to this many cells — openpyxl hands each row over padded to its
# last cell, empty ones included, so one formatted cell in column XFD makes 16,384 of a row —
# and refused beyond it (half a million rows of twenty columns fit; a spreadsheet that size is
# an export better written as CSV).
MAX_XLSX_CELLS = 10_000_000


@dataclass(frozen=True)
class RequiredWhen:
    """A conditional requirement: the column is required when `column` is in `values`
    (or, with `negate`, when it is not)."""

    column: str
    values: tuple[str, ...]
    negate: bool = False

    def describe(self) -> str:
        verb = "is not" if self.negate else "is"
        return f"required when {self.column} {verb} {'/'.join(self.values)}"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = "string"
    required: bool = False
    enum: tuple[str, ...] = ()
    default: str | None = None
    minimum: float | None = None
    exclusive_minimum: bool = False
    required_when: RequiredWhen | None = None
    upper: bool = False

    @property
    def must_be_present(self) -> bool:
        """A file must carry the column (as a header) when it is required or conditional."""
        return self.required or self.required_when is not None


@dataclass(frozen=True)
class Entity:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    # `updated_at`: latest updated_at wins, ties → later delivery; `delivery`: latest delivery
    # (inside one file, the later line) wins.
    versioned_by: Literal["updated_at", "delivery"] = "updated_at"
    has_is_deleted: bool = True
    optional: bool = False
    description: str = ""
    _by_name: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({c.name: c for c in self.columns})

    def column(self, name: str) -> Column:
        return self._by_name[name]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def present_columns(self) -> tuple[str, ...]:
        """Columns a file must carry: the primary key, `req` and conditionally required ones."""
        return tuple(
            c.name for c in self.columns if c.name in self.primary_key or c.must_be_present
        )


def _pk(name: str) -> Column:
    return Column(name, "string", required=True)


_BOOL_DELETED = Column("is_deleted", "boolean", default="false")
DEAL_STAGES = (
    "qualification", "discovery", "proposal", "negotiation", "closed_won", "closed_lost",
)
LIFECYCLE_STAGES = (
    "subscriber", "lead", "marketing_qualified_lead", "sales_qualified_lead", "opportunity",
    "customer", "other",
)
MARKETING_EVENT_TYPES = (
    "newsletter_signup", "linkedin_follow", "content_download", "webinar_registration",
    "webinar_attended", "event_visit", "chat_conversation", "contact_form", "demo_request",
    "pricing_request", "trial_signup",
)
ACTIVITY_OUTCOMES = (
    "sent", "replied", "bounced", "connected", "no_answer", "voicemail", "busy", "wrong_number",
    "held", "no_show", "cancelled",
)

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "users",
            (
                _pk("user_id"),
                Column("full_name", required=True),
                Column("email"),
                Column("role", "enum", required=True,
                       enum=("sdr", "ae", "manager", "marketing", "other")),
                Column("team"),
                Column("is_active", "boolean", default="true"),
                Column("updated_at", "timestamp", required=True),
            ),
            ("user_id",),
            has_is_deleted=False,
            description="CRM users (sales reps, marketers, managers)",
        ),
        Entity(
            "companies",
            (
                _pk("company_id"),
                Column("name", required=True),
                Column("domain"),
                Column("industry"),
                Column("employee_count", "integer"),
                Column("country"),
                Column("created_at", "timestamp", required=True),
                Column("updated_at", "timestamp", required=True),
                _BOOL_DELETED,
            ),
            ("company_id",),
            description="companies (accounts)",
        ),
        Entity(
            "contacts",
            (
                _pk("contact_id"),
                Column("company_id"),
                Column("email"),
                Column("first_name"),
                Column("last_name"),
                Column("job_title"),
                Column("owner_user_id"),
                Column("created_at", "timestamp", required=True),
                Column("updated_at", "timestamp", required=True),
                _BOOL_DELETED,
            ),
            ("contact_id",),
            description="people: leads, customers, subscribers",
        ),
        Entity(
            "lifecycle_changes",
            (
                _pk("change_id"),
                Column("contact_id", required=True),
                Column("lifecycle_stage", "enum", required=True, enum=LIFECYCLE_STAGES),
                Column("changed_at", "timestamp", required=True),
                Column("changed_by_user_id"),
                _BOOL_DELETED,
            ),
            ("change_id",),
            versioned_by="delivery",
            description="the lifecycle label as people set it in the CRM",
        ),
        Entity(
            "marketing_events",
            (
                _pk("event_id"),
                Column("contact_id", required=True),
                Column("event_type", "enum", required=True, enum=MARKETING_EVENT_TYPES),
                Column("occurred_at", "timestamp", required=True),
                Column("campaign"),
                Column("channel"),
                _BOOL_DELETED,
            ),
            ("event_id",),
            versioned_by="delivery",
            description="a contact's interactions with marketing",
        ),
        Entity(
            "activities",
            (
                _pk("activity_id"),
                Column("activity_type", "enum", required=True,
                       enum=("email", "call", "meeting", "linkedin_message", "task", "note")),
                Column("direction", "enum", enum=("outbound", "inbound")),
                Column("owner_user_id", required=True),
                Column("contact_id"),
                Column("deal_id"),
                Column("occurred_at", "timestamp", required=True),
                Column("duration_seconds", "integer"),
                Column("outcome", "enum", enum=ACTIVITY_OUTCOMES),
                Column("updated_at", "timestamp", required=True),
                _BOOL_DELETED,
            ),
            ("activity_id",),
            description="sales actions logged in the CRM",
        ),
        Entity(
            "deals",
            (
                _pk("deal_id"),
                Column("contact_id"),
                Column("company_id"),
                Column("owner_user_id", required=True),
                Column("deal_type", "enum", required=True,
                       enum=("new_business", "upsell", "renewal")),
                Column("stage", "enum", required=True, enum=DEAL_STAGES),
                Column("amount", "decimal", minimum=0),
                Column("currency", default="EUR", upper=True),
                Column("created_at", "timestamp", required=True),
                Column("closed_at", "timestamp",
                       required_when=RequiredWhen("stage", ("closed_won", "closed_lost"))),
                Column("lost_reason"),
                Column("updated_at", "timestamp", required=True),
                _BOOL_DELETED,
            ),
            ("deal_id",),
            description="opportunities",
        ),
        Entity(
            "deal_stage_changes",
            (
                Column("deal_id", required=True),
                Column("stage", "enum", required=True, enum=DEAL_STAGES),
                Column("changed_at", "timestamp", required=True),
                Column("changed_by_user_id"),
                _BOOL_DELETED,
            ),
            ("deal_id", "stage", "changed_at"),
            versioned_by="delivery",
            description="a deal's stage history",
        ),
        Entity(
            "quotes",
            (
                _pk("quote_id"),
                Column("deal_id", required=True),
                Column("status", "enum", required=True,
                       enum=("draft", "sent", "accepted", "rejected", "expired")),
                Column("amount", "decimal", minimum=0),
                Column("currency", default="EUR", upper=True),
                Column("created_at", "timestamp", required=True),
                Column("sent_at", "timestamp",
                       required_when=RequiredWhen("status", ("draft",), negate=True)),
                Column("updated_at", "timestamp", required=True),
                _BOOL_DELETED,
            ),
            ("quote_id",),
            description="offers sent to a prospect (offertes)",
        ),
        Entity(
            "fx_rates",
            (
                Column("currency", required=True, upper=True),
                Column("month", "month", required=True),
                Column("rate_to_eur", "decimal", required=True, minimum=0,
                       exclusive_minimum=True),
            ),
            ("currency", "month"),
            versioned_by="delivery",
            has_is_deleted=False,
            optional=True,
            description="monthly exchange rates: 1 unit of currency = rate_to_eur EUR",
        ),
    )
}

# The order in which entities are loaded and listed (parents before children).
ENTITY_NAMES: tuple[str, ...] = tuple(ENTITIES)
