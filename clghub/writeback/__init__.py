"""Writeback: value figures to CRM fields, diff-only, batched, each confirmed value sent once."""

from clghub.writeback.engine import (
    Change,
    CrmReport,
    WritebackSettings,
    plan_targets,
    run_crm_writeback,
)
from clghub.writeback.protocol import (
    FieldCheck,
    FieldInfo,
    OwnedFieldError,
    RecordWrite,
    TargetField,
    WritebackError,
    WriteOutcome,
    Writer,
    refuse_unowned,
)
from clghub.writeback.values import VALUE_SPECS, ValueSpec

__all__ = [
    "VALUE_SPECS",
    "Change",
    "CrmReport",
    "FieldCheck",
    "FieldInfo",
    "OwnedFieldError",
    "RecordWrite",
    "TargetField",
    "ValueSpec",
    "WriteOutcome",
    "WritebackError",
    "WritebackSettings",
    "Writer",
    "plan_targets",
    "refuse_unowned",
    "run_crm_writeback",
]
