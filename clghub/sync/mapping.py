"""Declarative mappings: source records -> normalized store rows.

A mapping file has one table per stream (a Salesforce object, a HubSpot
object, a usage feed)::

    [Opportunity]
    target = "opportunity"        # the normalized table
    id = "Id"                     # the record's id field
    modified = "SystemModstamp"   # the source's change clock (optional)
    deleted = "IsDeleted"         # the soft-delete flag (optional)

    [Opportunity.fields]          # normalized column = source field, or a rule
    name = "Name"
    amount = { from = "Amount", cast = "money", min = 0, max = 1e12 }
    status = { from = "StageName", map = { "Closed Won" = "won", "Closed Lost" = "lost" }, default = "open" }

The shipped defaults live in ``mappings/<source>.toml``; a user's own file
(``mapping = "..."`` in the source's config) overrides them key by key.
Every problem names the mapping file and the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Table

from clghub.config import ClghubConfig, ConfigError, ConfigProblem
from clghub.store.models import (
    Activity,
    Contact,
    Opportunity,
    Person,
    SourceLink,
    Ticket,
    UsageDaily,
    table_of,
)
from clghub.sync.casts import CASTS, CastError, to_bool, to_datetime

__all__ = [
    "TARGETS",
    "UNREADABLE",
    "FieldRule",
    "MappedPage",
    "MappedRecord",
    "SourceMapping",
    "StreamMapping",
    "Target",
    "load_mapping",
]


@dataclass(frozen=True)
class Target:
    """A normalized table a stream can feed, and the columns a mapping may set."""

    name: str
    table: Table
    fixed: tuple[str, ...]
    """Columns the sync itself sets (identity, deletes, the source's clock)."""
    enums: Mapping[str, frozenset[str]] = field(default_factory=dict)
    has_extra: bool = False

    @property
    def mappable(self) -> list[str]:
        skip = {
            "id",
            "created_at",
            "updated_at",
            "row_version",
            "account_id",
            "match_rule",
            "extra",
            *self.fixed,
        }
        return [c.name for c in self.table.columns if c.name not in skip]


_SOURCE_FIXED = ("source", "source_id", "source_modified_at", "is_deleted")

TARGETS: dict[str, Target] = {
    "account": Target("account", table_of(SourceLink), (*_SOURCE_FIXED, "object"), has_extra=True),
    "person": Target(
        "person",
        table_of(Person),
        _SOURCE_FIXED,
        {"team": frozenset({"sales", "cs", "marketing", "other"})},
    ),
    "contact": Target(
        "contact",
        table_of(Contact),
        _SOURCE_FIXED,
        {"role": frozenset({"economic_buyer", "champion", "user", "other"})},
    ),
    "opportunity": Target(
        "opportunity",
        table_of(Opportunity),
        _SOURCE_FIXED,
        {
            "type": frozenset({"new", "renewal", "expansion", "contraction"}),
            "status": frozenset({"open", "won", "lost"}),
        },
    ),
    "ticket": Target(
        "ticket",
        table_of(Ticket),
        _SOURCE_FIXED,
        {"priority": frozenset({"low", "medium", "high", "urgent"})},
    ),
    "activity": Target(
        "activity",
        table_of(Activity),
        _SOURCE_FIXED,
        {"kind": frozenset({"meeting", "call", "email", "task", "other"})},
    ),
    "usage": Target("usage", table_of(UsageDaily), ("source",)),
}

_RULE_KEYS = {"from", "cast", "map", "default", "required", "min", "max", "value"}
_STREAM_KEYS = {"target", "id", "modified", "deleted", "fields", "extra", "day_from"}


Getter = Callable[[Mapping[str, Any]], Any]
"""A compiled rule: record -> column value (raises CastError)."""


@dataclass(frozen=True)
class FieldRule:
    column: str
    source: str | None
    cast: str = "str"
    mapping: Mapping[str, Any] | None = None
    default: Any = None
    required: bool = False
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    constant: Any = None
    max_length: int | None = None
    allowed: frozenset[str] | None = None
    getter: Getter = field(init=False, repr=False, compare=False)
    """This rule compiled to one function (see :func:`_compile`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "getter", _compile(self))

    @property
    def simple(self) -> bool:
        """A plain cast: no map, default, requirement, enum or bounds to check."""
        return (
            self.mapping is None
            and self.default is None
            and not self.required
            and self.allowed is None
            and self.minimum is None
            and self.maximum is None
        )

    def apply(self, record: Mapping[str, Any]) -> Any:
        return self.getter(record)

    def apply_checked(self, record: Mapping[str, Any]) -> Any:
        """The rule in full: map, cast, default, requirement, enum, bounds, length."""
        if self.source is None:
            return self.constant
        raw = record.get(self.source)
        if self.mapping is not None and raw is not None:
            key = str(raw).strip()
            if key in self.mapping:
                value = self.mapping[key]
            elif self.default is not None:
                value = self.default
            else:
                raise CastError(
                    f"{self.column}: unknown value {key!r} for {self.source} (not in the mapping's map)"
                )
        else:
            try:
                value = CASTS[self.cast](raw)
            except CastError as exc:
                raise CastError(f"{self.column}: {exc} (from {self.source})") from None
        if value is None:
            value = self.default
        if value is None:
            if self.required:
                raise CastError(f"{self.column}: {self.source} is required but empty")
            return None
        if self.allowed is not None and value not in self.allowed:
            raise CastError(f"{self.column}: {value!r} is not one of {sorted(self.allowed)}")
        if (
            (self.minimum is not None or self.maximum is not None)
            and isinstance(value, int | float | Decimal)
            and not isinstance(value, bool)
        ):
            # Decimals and ints convert exactly; a float compares as it prints.
            if isinstance(value, Decimal):
                number = value
            elif isinstance(value, int):
                number = Decimal(value)
            else:
                number = Decimal(str(value))
            if self.minimum is not None and number < self.minimum:
                raise CastError(
                    f"{self.column}: {_plain(number)} is below the minimum {_plain(self.minimum)}"
                )
            if self.maximum is not None and number > self.maximum:
                raise CastError(
                    f"{self.column}: {_plain(number)} is above the maximum {_plain(self.maximum)}"
                )
        if self.max_length is not None and isinstance(value, str) and len(value) > self.max_length:
            raise CastError(
                f"{self.column}: {len(value)} characters, the store holds at most {self.max_length}"
            )
        return value


def _compile(rule: FieldRule) -> Getter:
    """One closure per rule: every field of every record goes through it (the
    sync's hottest loop), so plain casts skip the checks they do not need and
    plain printable ASCII text skips the cast altogether."""
    if rule.source is None:
        constant = rule.constant
        return lambda record: constant
    cast = CASTS.get(rule.cast)
    if not rule.simple or cast is None:
        return rule.apply_checked
    source, column, limit = rule.source, rule.column, rule.max_length

    def plain_cast(record: Mapping[str, Any]) -> Any:
        try:
            value = cast(record.get(source))
        except CastError as exc:
            raise CastError(f"{column}: {exc} (from {source})") from None
        if limit is not None and isinstance(value, str) and len(value) > limit:
            raise CastError(f"{column}: {len(value)} characters, the store holds at most {limit}")
        return value

    if rule.cast != "str":
        return plain_cast

    def plain_text(record: Mapping[str, Any]) -> Any:
        value = record.get(source)
        if value.__class__ is str and value.isascii() and value.isprintable():
            value = value.strip()
            if limit is None or len(value) <= limit:
                return value or None
        return plain_cast(record)  # anything else takes the cast (and its errors)

    return plain_text


def _plain(number: Decimal) -> str:
    """A number as people write it: 1000000000000, not 1E+12 or 1000000000000.0."""
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


UNREADABLE = "_unreadable"
"""The key of a record a source could not parse, its value the reason.

A source yields ``{UNREADABLE: "usage.jsonl line 7: not a JSON object"}`` in
place of the record, so the line is quarantined with that reason and the
sync goes on, rather than failing the page or vanishing.
"""


@dataclass
class MappedRecord:
    """A mapped row, or the reason the record was rejected."""

    source_id: str
    row: dict[str, Any] | None
    error: str | None = None


@dataclass
class MappedPage:
    """A page of records mapped: the rows, and the rejects with their reasons."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[str, str, Mapping[str, Any]]] = field(default_factory=list)
    """``(source id, reason, raw record)`` of each record that cannot be stored."""


@dataclass(frozen=True)
class StreamMapping:
    stream: str
    target: Target
    id_field: str | None
    modified_field: str | None
    deleted_field: str | None
    fields: Mapping[str, FieldRule]
    extra: Mapping[str, FieldRule]
    label: str
    """Where this mapping came from (for messages)."""

    def source_fields(self) -> list[str]:
        """Every source field this mapping reads, in a stable order."""
        names: list[str] = []
        for name in (self.id_field, self.modified_field, self.deleted_field):
            if name and name not in names:
                names.append(name)
        for rule in (*self.fields.values(), *self.extra.values()):
            if rule.source and rule.source not in names:
                names.append(rule.source)
        return names

    def without(self, missing: set[str]) -> StreamMapping:
        """This mapping minus the rules that read ``missing`` source fields (schema drift)."""
        return StreamMapping(
            self.stream,
            self.target,
            self.id_field,
            self.modified_field if self.modified_field not in missing else None,
            self.deleted_field if self.deleted_field not in missing else None,
            {k: r for k, r in self.fields.items() if r.source not in missing},
            {k: r for k, r in self.extra.items() if r.source not in missing},
            self.label,
        )

    def map(self, record: Mapping[str, Any], *, source: str) -> MappedRecord:
        if UNREADABLE in record:
            return MappedRecord("", None, str(record[UNREADABLE]))
        source_id = str(record.get(self.id_field, "")) if self.id_field else ""
        if self.id_field and not source_id:
            return MappedRecord("", None, f"no {self.id_field}")
        try:
            return MappedRecord(source_id, self._row(record, source, source_id))
        except CastError as exc:
            return MappedRecord(source_id, None, str(exc))

    def map_page(self, records: Iterable[Mapping[str, Any]], *, source: str) -> MappedPage:
        """:meth:`map` over a page, without a result object per record."""
        page = MappedPage()
        id_field, row_of, rows = self.id_field, self._row, page.rows
        for record in records:
            if UNREADABLE in record:
                page.rejected.append(("", str(record[UNREADABLE]), record))
                continue
            source_id = str(record.get(id_field, "")) if id_field else ""
            if id_field and not source_id:
                page.rejected.append(("", f"no {id_field}", record))
                continue
            try:
                rows.append(row_of(record, source, source_id))
            except CastError as exc:
                page.rejected.append((source_id, str(exc), record))
        return page

    def _row(self, record: Mapping[str, Any], source: str, source_id: str) -> dict[str, Any]:
        row = {column: rule.getter(record) for column, rule in self.fields.items()}
        if self.target.has_extra:
            extra = {key: rule.getter(record) for key, rule in self.extra.items()}
            row["extra"] = {
                k: (str(v) if isinstance(v, Decimal) else v) for k, v in extra.items()
            } or None
        if self.target.name == "usage":
            row["source"] = source
            return row
        if len(source_id) > 64:
            raise CastError(f"{self.id_field}: id of {len(source_id)} characters")
        row["source"] = source
        row["source_id"] = source_id
        row["source_modified_at"] = (
            to_datetime(record.get(self.modified_field)) if self.modified_field else None
        )
        deleted = to_bool(record.get(self.deleted_field)) if self.deleted_field else False
        row["is_deleted"] = bool(deleted)
        if self.target.name == "account":
            row["object"] = "account"
        return row


@dataclass(frozen=True)
class SourceMapping:
    source: str
    streams: Mapping[str, StreamMapping]
    files: tuple[str, ...]


# --------------------------------------------------------------------------- loading


def _read(label: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(label, "", f"invalid TOML: {exc}")]) from None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in ("map",):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_mapping(
    source: str, config: ClghubConfig | None = None, *, user_file: str | None = None
) -> SourceMapping:
    """The shipped mapping of ``source`` with the user's overrides, validated."""
    shipped_label = f"mappings/{source}.toml"
    shipped = (
        resources.files("clghub.mappings").joinpath(f"{source}.toml").read_text(encoding="utf-8")
    )
    data = _read(shipped_label, shipped)
    files = [shipped_label]
    path_text = user_file
    if path_text is None and config is not None:
        section = getattr(config.sources, source, None)
        path_text = getattr(section, "mapping", None)
    label = shipped_label
    if path_text:
        path = config.resolve_path(path_text) if config is not None else Path(path_text)
        label = str(path)
        try:
            user_text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                [ConfigProblem(label, "", f"cannot read mapping file: {exc.strerror}")]
            ) from None
        data = _merge(data, _read(label, user_text))
        files.append(label)
    streams, problems = _parse(data, label)
    if problems:
        raise ConfigError(problems)
    return SourceMapping(source, streams, tuple(files))


def _parse(
    data: dict[str, Any], label: str
) -> tuple[dict[str, StreamMapping], list[ConfigProblem]]:
    problems: list[ConfigProblem] = []
    streams: dict[str, StreamMapping] = {}
    for stream, spec in data.items():
        if not isinstance(spec, dict):
            problems.append(ConfigProblem(label, stream, "must be a table describing a stream"))
            continue
        for key in spec:
            if key not in _STREAM_KEYS:
                problems.append(
                    ConfigProblem(
                        label,
                        f"{stream}.{key}",
                        f"unknown key; expected one of {sorted(_STREAM_KEYS)}",
                    )
                )
        target_name = spec.get("target")
        target = TARGETS.get(str(target_name))
        if target is None:
            problems.append(
                ConfigProblem(
                    label,
                    f"{stream}.target",
                    f"unknown target {target_name!r}; expected one of {sorted(TARGETS)}",
                )
            )
            continue
        id_field = spec.get("id")
        if target.name != "usage" and not isinstance(id_field, str):
            problems.append(
                ConfigProblem(
                    label, f"{stream}.id", "required: the source field holding the record id"
                )
            )
            continue
        fields = _rules(spec.get("fields", {}), target, f"{stream}.fields", label, problems)
        extra = _rules(spec.get("extra", {}), None, f"{stream}.extra", label, problems)
        if extra and not target.has_extra:
            problems.append(
                ConfigProblem(
                    label, f"{stream}.extra", f"target {target.name} keeps no extra fields"
                )
            )
        if target.name == "usage":
            for needed in ("account_key", "metric", "day", "value"):
                if needed not in fields:
                    problems.append(
                        ConfigProblem(
                            label, f"{stream}.fields.{needed}", "required for a usage stream"
                        )
                    )
        streams[stream] = StreamMapping(
            stream,
            target,
            id_field if isinstance(id_field, str) else None,
            spec.get("modified"),
            spec.get("deleted"),
            fields,
            extra,
            label,
        )
    return streams, problems


def _rules(
    spec: Any, target: Target | None, prefix: str, label: str, problems: list[ConfigProblem]
) -> dict[str, FieldRule]:
    rules: dict[str, FieldRule] = {}
    if not isinstance(spec, dict):
        problems.append(ConfigProblem(label, prefix, "must be a table of column = source field"))
        return rules
    columns = {c.name: c for c in target.table.columns} if target else {}
    for column, raw in spec.items():
        key = f"{prefix}.{column}"
        if target is not None and column not in target.mappable:
            problems.append(
                ConfigProblem(
                    label,
                    key,
                    f"no column '{column}' to map in {target.name} (columns: {', '.join(target.mappable)})",
                )
            )
            continue
        rule = raw if isinstance(raw, dict) else {"from": raw}
        unknown = set(rule) - _RULE_KEYS
        if unknown:
            problems.append(
                ConfigProblem(
                    label,
                    f"{key}.{sorted(unknown)[0]}",
                    f"unknown key; expected one of {sorted(_RULE_KEYS)}",
                )
            )
            continue
        source = rule.get("from")
        if "value" not in rule and not isinstance(source, str):
            problems.append(
                ConfigProblem(label, key, 'needs from = "<source field>" (or a constant value)')
            )
            continue
        cast = rule.get("cast", "str")
        if cast not in CASTS:
            problems.append(
                ConfigProblem(
                    label, f"{key}.cast", f"unknown cast '{cast}'; expected one of {sorted(CASTS)}"
                )
            )
            continue
        allowed = target.enums.get(column) if target else None
        mapping = rule.get("map")
        if mapping is not None:
            if not isinstance(mapping, dict):
                problems.append(
                    ConfigProblem(
                        label, f"{key}.map", "must be a table of source value = store value"
                    )
                )
                continue
            if allowed is not None:
                bad = [v for v in mapping.values() if v not in allowed]
                if bad:
                    problems.append(
                        ConfigProblem(
                            label, f"{key}.map", f"{bad[0]!r} is not one of {sorted(allowed)}"
                        )
                    )
                    continue
        default = rule.get("default")
        if allowed is not None and default is not None and default not in allowed:
            problems.append(
                ConfigProblem(
                    label, f"{key}.default", f"{default!r} is not one of {sorted(allowed)}"
                )
            )
            continue
        column_type = columns.get(column)
        length = getattr(column_type.type, "length", None) if column_type is not None else None
        try:
            minimum = Decimal(str(rule["min"])) if "min" in rule else None
            maximum = Decimal(str(rule["max"])) if "max" in rule else None
        except ArithmeticError:
            problems.append(ConfigProblem(label, key, "min and max must be numbers"))
            continue
        rules[column] = FieldRule(
            column=column,
            source=source if isinstance(source, str) else None,
            cast=cast,
            mapping=mapping,
            default=default,
            required=bool(rule.get("required", False)),
            minimum=minimum,
            maximum=maximum,
            constant=rule.get("value"),
            max_length=length if isinstance(length, int) else None,
            allowed=allowed,
        )
    return rules
