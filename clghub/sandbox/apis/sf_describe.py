"""Describe payloads: the global object list and each object's field metadata.

Shaped like Salesforce's ``/sobjects`` and ``/sobjects/{T}/describe`` answers,
from the catalogue in schema.py.
"""

from __future__ import annotations

from clghub.sandbox.schema import SF_ID_PREFIX, SF_OBJECTS, SfField

__all__ = ["describe_global", "describe_object", "object_summary"]

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}
_LENGTHS = {"id": 18, "reference": 18, "picklist": 255, "email": 80, "url": 255, "phone": 40}
_NUMBER_SHAPE = {"currency": (18, 2), "percent": (18, 2), "double": (18, 2)}
_PLURALS = {"Opportunity": "Opportunities", "Case": "Cases"}


def _relationship_name(field: SfField) -> str | None:
    if field.type != "reference":
        return None
    if field.name.endswith("__c"):
        return field.name[:-3] + "__r"
    if field.name.endswith("Id"):
        return field.name[:-2]
    return None


def _field(field: SfField) -> dict[str, object]:
    length = field.length or _LENGTHS.get(field.type, 0)
    if field.type in ("string", "textarea") and not field.length:
        length = 255
    precision, scale = _NUMBER_SHAPE.get(field.type, (0, 0))
    text_like = field.type not in _SOAP_TYPES or field.type in ("id", "reference")
    return {
        "aggregatable": field.type != "textarea",
        "autoNumber": False,
        "byteLength": length * 3 if text_like else 0,
        "calculated": False,
        "calculatedFormula": None,
        "cascadeDelete": False,
        "caseSensitive": False,
        "compoundFieldName": None,
        "createable": field.createable,
        "custom": field.custom,
        "defaultValue": None,
        "defaultedOnCreate": field.name
        in ("Id", "OwnerId", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"),
        "deprecatedAndHidden": False,
        "digits": 9 if field.type == "int" else 0,
        "externalId": field.external_id,
        "filterable": field.filterable and field.type != "textarea",
        "groupable": field.type not in ("double", "currency", "percent", "textarea", "datetime"),
        "idLookup": field.name == "Id" or field.external_id,
        "label": field.label,
        "length": length if text_like else 0,
        "name": field.name,
        "nameField": field.name == "Name",
        "nillable": field.nillable,
        "picklistValues": [
            {
                "active": True,
                "defaultValue": False,
                "label": value,
                "validFor": None,
                "value": value,
            }
            for value in field.picklist
        ],
        "precision": precision,
        "referenceTo": list(field.reference_to),
        "relationshipName": _relationship_name(field),
        "restrictedPicklist": field.type == "picklist" and field.custom,
        "scale": scale,
        "soapType": _SOAP_TYPES.get(field.type, "xsd:string"),
        "sortable": field.type != "textarea",
        "type": field.type,
        "unique": field.name == "Id",
        "updateable": field.updateable,
    }


def _urls(sobject: str, version: str) -> dict[str, str]:
    base = f"/services/data/{version}/sobjects/{sobject}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def object_summary(sobject: str, version: str) -> dict[str, object]:
    deletable = any(f.name == "IsDeleted" for f in SF_OBJECTS[sobject])
    return {
        "activateable": False,
        "createable": True,
        "custom": False,
        "customSetting": False,
        "deletable": deletable,
        "deprecatedAndHidden": False,
        "feedEnabled": False,
        "keyPrefix": SF_ID_PREFIX[sobject],
        "label": sobject,
        "labelPlural": _PLURALS.get(sobject, sobject + "s"),
        "layoutable": True,
        "mergeable": sobject in ("Account", "Contact"),
        "mruEnabled": True,
        "name": sobject,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": True,
        "triggerable": True,
        "undeletable": deletable,
        "updateable": True,
        "urls": _urls(sobject, version),
    }


def describe_global(version: str) -> dict[str, object]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [object_summary(name, version) for name in SF_OBJECTS],
    }


def describe_object(sobject: str, version: str) -> dict[str, object]:
    described = object_summary(sobject, version)
    described.update(
        {
            "childRelationships": [],
            "fields": [_field(f) for f in SF_OBJECTS[sobject]],
            "recordTypeInfos": [],
            "supportedScopes": [
                {"label": "All " + str(described["labelPlural"]), "name": "everything"}
            ],
        }
    )
    return described
