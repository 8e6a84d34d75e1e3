"""Salesforce field metadata, as read from an org's describe, in the shape the mapping needs."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldMeta:
    """One field of a describe result (`GET /sobjects/{Object}/describe`, `fields[]`)."""

    name: str
    type: str  # describe `type`: string, textarea, email, phone, url, picklist, int, double, ...
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    custom: bool = False
    digits: int = 0
    precision: int = 0
    scale: int = 0
    picklist_values: tuple[str, ...] = ()
    restricted_picklist: bool = False
    external_id: bool = False
    unique: bool = False
    auto_number: bool = False  # describe `autoNumber`: Salesforce numbers each new record
    calculated: bool = False  # describe `calculated`: a formula field, computed on read
    filterable: bool = True  # describe `filterable`: a query's WHERE may name it (not long text areas)

    @classmethod
    def from_describe(cls, d: Mapping[str, Any]) -> "FieldMeta":
        return cls(
            name=d["name"],
            type=d["type"],
            length=d.get("length") or 0,
            createable=bool(d.get("createable", True)),
            updateable=bool(d.get("updateable", True)),
            nillable=bool(d.get("nillable", True)),
            custom=bool(d.get("custom", False)),
            digits=d.get("digits") or 0,
            precision=d.get("precision") or 0,
            scale=d.get("scale") or 0,
            picklist_values=tuple(p["value"] for p in d.get("picklistValues") or () if p.get("active", True)),
            restricted_picklist=bool(d.get("restrictedPicklist", False)),
            external_id=bool(d.get("externalId", False)),
            unique=bool(d.get("unique", False)),
            auto_number=bool(d.get("autoNumber", False)),
            calculated=bool(d.get("calculated", False)),
            filterable=bool(d.get("filterable", True)),
        )


@dataclass(frozen=True)
class ObjectMeta:
    """The fields of one sObject, looked up case-insensitively as Salesforce does."""

    name: str
    fields: dict[str, FieldMeta] = field(default_factory=dict)  # lower-cased API name -> meta

    @classmethod
    def from_describe(cls, d: Mapping[str, Any]) -> "ObjectMeta":
        metas = (FieldMeta.from_describe(f) for f in d.get("fields", ()))
        return cls(name=d["name"], fields={m.name.lower(): m for m in metas})

    def get(self, name: str) -> FieldMeta | None:
        return self.fields.get(name.lower())
