"""What a CRM writer implements, and what the engine and the writers exchange.

The engine decides *what* to write (desired values against what the CRM
last confirmed); a writer decides *how*: its field types, batch sizes,
endpoints and the way its CRM reports a failure per record. Writers live in
``clghub.connectors.<crm>.writer``; the engine never imports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from clghub.errors import ClghubError, UsageError
from clghub.writeback.values import ValueSpec

__all__ = [
    "FieldCheck",
    "FieldInfo",
    "OwnedFieldError",
    "RecordWrite",
    "TargetField",
    "WriteOutcome",
    "WritebackError",
    "Writer",
    "refuse_unowned",
]


class WritebackError(ClghubError):
    """Writeback cannot run for a CRM (e.g. its fields are missing)."""


class OwnedFieldError(UsageError):
    """A write would touch a CRM field outside ``owned_fields``: refused, nothing sent."""


@dataclass(frozen=True)
class TargetField:
    """A clghub value and the CRM field it is written to."""

    spec: ValueSpec
    name: str


@dataclass(frozen=True)
class FieldInfo:
    """A CRM field as the CRM describes it."""

    name: str
    type: str
    """The CRM's own type name (Salesforce ``double``, HubSpot ``number``, ...)."""
    updateable: bool = True
    length: int | None = None
    """Longest text the field takes, where the CRM says."""
    options: tuple[str, ...] = ()
    """Allowed values of a picklist / enumeration."""


@dataclass
class FieldCheck:
    """The outcome of checking every target field against the CRM."""

    fields: dict[str, FieldInfo] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """One line per field that cannot be written, saying what to do."""
    to_create: list[str] = field(default_factory=list)
    """The missing fields, with the type to create each with."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class RecordWrite:
    """The fields to set on one CRM record, as canonical text (``None`` clears)."""

    record_id: str
    values: Mapping[str, str | None]


@dataclass(frozen=True)
class WriteOutcome:
    """What the CRM said about one record of a batch."""

    record_id: str
    ok: bool
    error: str | None = None
    in_doubt: bool = False
    """The CRM's answer does not say; the next run reads the record to find out."""


class Writer(Protocol):
    """A CRM's writer. ``check_fields`` runs first: it learns the field types."""

    crm: str
    owned_fields: frozenset[str]
    mode: str
    """How the last :meth:`batch_size` decided to write (e.g. collections or bulk)."""
    write_requests: int
    """API calls made to write so far (every call of a bulk job counts)."""
    needs_total: bool
    """Whether :meth:`batch_size` depends on how many records change (it then runs
    after a full diff); otherwise writing starts with the first changed page."""

    def check_fields(self, targets: Sequence[TargetField]) -> FieldCheck:
        """Describe the target fields: each exists, is writable and fits its value."""
        ...

    def batch_size(self, changed_records: int | None) -> int:
        """Records per :meth:`write` call, for a run that changes this many records
        (``None``: not counted, when ``needs_total`` is false)."""
        ...

    def write(self, batch: Sequence[RecordWrite]) -> list[WriteOutcome]:
        """Write one batch; one outcome per record. Per-record failures are
        outcomes, never exceptions; an exception means the whole call failed."""
        ...

    def read(
        self, record_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, object]]:
        """Current values of ``fields`` on the records that exist (missing ones are absent)."""
        ...

    def close(self) -> None: ...


def refuse_unowned(crm: str, owned: frozenset[str], fields: Sequence[str] | frozenset[str]) -> None:
    """The owned-field guard: raise before anything outside ``owned_fields`` is sent."""
    stray = sorted(set(fields) - owned)
    if stray:
        raise OwnedFieldError(
            f"writeback.{crm}: refusing to write {', '.join(stray)}: not listed in "
            f"writeback.{crm}.owned_fields (clghub writes only the fields it owns)"
        )
