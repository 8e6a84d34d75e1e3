"""The emulated org's data: records in SQLite, cached in memory, with Salesforce's DML rules."""

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from emulator import ids, soql
from emulator.config import ORG_NAME, OrgConfig
from emulator.duplicates import DuplicateRules, duplicate_error, match_key
from emulator.errors import ApiError, MultipleChoicesError, RecordError
from emulator.objects import KEY_PREFIXES, OPPORTUNITY_STAGES, ORGANIZATION, SObject, build_objects
from emulator.validation import PARSE_ERRORS, error, format_datetime, validate

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, sobject TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_NOT_FOUND = "The requested resource does not exist"
_WSDL_HINT = "Please reference your WSDL or the describe call for the appropriate names."
_ADDRESSES = {  # compound field -> prefix of its component fields
    "Lead": {"Address": ""},
    "Account": {"BillingAddress": "Billing", "ShippingAddress": "Shipping"},
    "Contact": {"MailingAddress": "Mailing", "OtherAddress": "Other"},
}
_ADDRESS_PARTS = {
    "street": "Street",
    "city": "City",
    "state": "State",
    "postalCode": "PostalCode",
    "country": "Country",
    "latitude": "Latitude",
    "longitude": "Longitude",
    "geocodeAccuracy": "GeocodeAccuracy",
}
# compound field -> its component fields, spelt out once per object
_ADDRESS_FIELDS = {
    sobject: {compound: tuple(prefix + v for v in _ADDRESS_PARTS.values()) for compound, prefix in c.items()}
    for sobject, c in _ADDRESSES.items()
}
_NAME_PARTS = ("FirstName", "MiddleName", "LastName", "Suffix")
ORG_CREATED = "2020-10-01T00:00:00.000+0000"  # fixed, so that answers do not change between runs
_AUDIT = ("CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp")
DEFAULT_VERSION = "59.0"  # the API version named in answers' URLs when the caller gives none
# Salesforce's standard lead field mapping (convertLead): Lead field -> Contact field, -> Account field.
_LEAD_TO_CONTACT = {
    **{n: n for n in ("Salutation", "FirstName", "MiddleName", "LastName", "Suffix", "Title", "Email")},
    **{n: n for n in ("Phone", "MobilePhone", "Fax", "LeadSource", "Description", "HasOptedOutOfEmail")},
    **{part: f"Mailing{part}" for part in _ADDRESS_PARTS.values()},
}
_LEAD_TO_ACCOUNT = {
    **{n: n for n in ("Phone", "Fax", "Website", "Industry", "AnnualRevenue", "NumberOfEmployees", "Rating")},
    "LeadSource": "AccountSource",
    **{part: f"Billing{part}" for part in _ADDRESS_PARTS.values()},
}

Record = dict[str, Any]


class Org:
    """One org's records; thread-safe; a write outside transaction() is committed when it returns."""

    def __init__(self, db_path: str | Path, config: OrgConfig, clock: Callable[[], datetime] | None = None):
        self.config = config
        self._objects = build_objects(config)
        self._by_lower = {name.lower(): name for name in self._objects}
        self._by_prefix = {obj.key_prefix: name for name, obj in self._objects.items()}
        self._user_ids = {ids.to18(u.user_id) for u in config.users}
        self._user_id = ids.to18(config.users[0].user_id)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._last_stamp = ""
        self._stamp_second: datetime | None = None  # the clock's last second (UTC) and its formatted form
        self._stamp_text = ""
        # Indexed for upsert matching and DUPLICATE_VALUE: external ids, idLookup fields (a standard
        # object's upsert key, e.g. Lead.Email) and unique fields; live records only.
        self._indexed = {
            name: tuple(
                f.name for f in obj.fields if f.external_id or f.unique or (f.id_lookup and f.type != "id")
            )
            for name, obj in self._objects.items()
        }
        self._unique = {
            name: tuple(n for n in self._indexed[name] if obj.by_lower[n.lower()].unique)
            for name, obj in self._objects.items()
        }
        # What every insert starts from: booleans false, picklists at their default value.
        self._defaults = {
            name: {
                **{f.name: False for f in obj.fields if f.type == "boolean"},
                **{f.name: f.picklist_default for f in obj.fields if f.defaulted and f.picklist_default},
            }
            for name, obj in self._objects.items()
        }
        # Canonical field name -> whether _check_references looks the value up (audit fields it does not).
        self._checked_references = {
            name: {f.name: f.type == "reference" and f.name not in _AUDIT for f in obj.by_lower.values()}
            for name, obj in self._objects.items()
        }
        self._duplicate_rules = DuplicateRules(config.duplicate_rules, self._objects)
        # Indexed by their match key (trimmed, any case), for the duplicate rules; live records only.
        self._rule_fields = {name: self._duplicate_rules.fields(name) for name in self._objects}
        self._lock = threading.RLock()
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every write outside transaction() commits alone; SAVEPOINTs nest inside.
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process crash, costs no fsync
        self._db.executescript(_SCHEMA)
        self._depth = 0
        self._undo: list[tuple[str, str, Record | None]] = []
        # Writes inside transaction() wait here and go to SQLite together (executemany) before the
        # savepoint's next boundary; nothing reads the tables meanwhile, and only RELEASE commits them.
        self._pending_records: list[tuple[str, str, str]] = []
        self._pending_counters: dict[str, int] = {}
        self._load()

    # --- metadata --------------------------------------------------------------------------------

    def sobject_names(self) -> list[str]:
        return list(self._objects)

    def object(self, sobject: str) -> SObject:
        """The metadata of `sobject` (any casing); ApiError 404 NOT_FOUND if the org has no such object."""
        return self._objects[self.canonical_sobject(sobject)]

    def canonical_sobject(self, name: str) -> str:
        canonical = self._by_lower.get(name.lower())
        if canonical is None:
            raise ApiError(404, "NOT_FOUND", _NOT_FOUND)
        return canonical

    def describe_global(self, version: str) -> dict:
        return {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [obj.describe_global(version) for obj in self._objects.values()],
        }

    def describe(self, sobject: str, version: str) -> dict:
        return self.object(sobject).describe(version)

    def metadata(self, sobject: str, version: str) -> dict:
        return {"objectDescribe": self.object(sobject).describe_global(version), "recentItems": []}

    def sobject_of_id(self, record_id: str) -> str:
        canonical = _canonical_id(record_id)
        name = self._by_prefix.get(canonical[:3])
        if name is None and canonical in self._records[ORGANIZATION]:
            # A configured org_id need not carry a consistent case-safe suffix (the default does not).
            name = ORGANIZATION
        if name is None:
            raise ApiError(400, "MALFORMED_ID", f"malformed id {record_id}")
        return name

    # --- DML -------------------------------------------------------------------------------------

    def create(
        self, sobject: str, body: dict, *, allow_save: bool = False, version: str = DEFAULT_VERSION
    ) -> str:
        """Creates the record; `allow_save` saves it despite duplicate rules that only alert."""
        obj = self._writable(sobject, "insert")
        values, errors = validate(obj, body, for_create=True)
        if errors:
            _refuse(errors)
        with self._lock:
            return self._insert(obj, values, allow_save=allow_save, version=version)

    def create_accepted(self, sobject: str, values: Record) -> str:
        """create() of the values that validate() accepts a body as, checked already (Bulk checks a
        chunk's columns at once)."""
        obj = self._writable(sobject, "insert")
        with self._lock:
            return self._insert(obj, values)

    def seed(self, sobject: str, fields: dict) -> str:
        """Creates a record as an admin data load would: read-only fields (IsConverted, dates) allowed,
        duplicate rules not run. A Lead seeded as converted without a ConvertedContactId is converted as
        convertLead would: a Contact and (unless ConvertedAccountId is given) an Account are created."""
        obj = self._writable(sobject, "insert")
        values, errors = validate(obj, fields, for_create=True, admin=True)
        if errors:
            _refuse(errors)
        with self._lock:
            if obj.name == "Lead" and values.get("IsConverted") and values.get("ConvertedContactId") is None:
                with self.transaction():  # the Lead and what it became are seeded together or not at all
                    return self._insert(obj, self._convert_lead(values), admin=True)
            return self._insert(obj, values, admin=True)

    def get(self, sobject: str, record_id: str, fields: list[str] | None, version: str) -> dict:
        obj = self.object(sobject)
        if fields is None:
            names = [f.name for f in obj.fields]
        else:
            names = []
            for name in fields:
                f = obj.field(name.strip())
                if f is None:
                    raise ApiError(
                        400,
                        "INVALID_FIELD",
                        f"No such column '{name}' on entity '{obj.name}'. If you "
                        "are attempting to use a custom field, be sure to append the '__c' after the "
                        f"custom field name. {_WSDL_HINT}",
                    )
                names.append(f.name)
            if "Id" not in names:
                names.append("Id")
        with self._lock:
            if not ids.is_valid(record_id):
                raise ApiError(
                    404,
                    "NOT_FOUND",
                    f"Provided external ID field does not exist or is not accessible: {record_id}",
                )
            record = self._find(obj, record_id)
            return {
                "attributes": _attributes(obj.name, record["Id"], version),
                **{n: record.get(n) for n in names},
            }

    def update(
        self,
        sobject: str,
        record_id: str,
        body: dict,
        *,
        allow_save: bool = False,
        version: str = DEFAULT_VERSION,
    ) -> str:
        """Updates the record and returns its 18-character id, whatever form `record_id` took;
        `allow_save` saves it despite duplicate rules that only alert."""
        obj = self._writable(sobject, "update")
        values, errors = validate(obj, body, for_create=False)
        with self._lock:
            record = self._find(obj, record_id)
            if errors:
                _refuse(errors)
            self._update(obj, record, values, allow_save, version)
            return record["Id"]

    def update_accepted(self, sobject: str, record_id: str, values: Record) -> str:
        """update() of the values that validate() accepts a body as, checked already."""
        obj = self._writable(sobject, "update")
        with self._lock:
            record = self._find(obj, record_id)
            self._update(obj, record, values)
            return record["Id"]

    def delete(self, sobject: str, record_id: str) -> str:
        """Deletes the record and returns its 18-character id, whatever form `record_id` took."""
        obj = self._writable(sobject, "delete")
        with self._lock:
            record = self._find(obj, record_id)
            stamp = self._now()
            self._put(
                obj.name,
                {
                    **record,
                    "IsDeleted": True,
                    "LastModifiedDate": stamp,
                    "LastModifiedById": self._user_id,
                    "SystemModstamp": stamp,
                },
            )
            return record["Id"]

    def upsert(
        self,
        sobject: str,
        ext_field: str,
        value: str,
        body: dict,
        version: str = DEFAULT_VERSION,
        update_only: bool = False,
        allow_save: bool = False,
    ) -> tuple[str, bool]:
        """(id, created) after matching `value` in `ext_field`; `update_only` refuses to create (404),
        `allow_save` saves despite duplicate rules that only alert."""
        obj = self.object(sobject)
        f = obj.field(ext_field)
        # Salesforce matches on a custom field marked External ID, or a standard field with the idLookup
        # property (SOAP upsert's externalIDFieldName; REST's own example upserts a Lead by Email).
        if f is None or not (f.external_id or f.id_lookup or f.type == "id"):
            raise ApiError(404, "NOT_FOUND", _NOT_FOUND)
        # The URL names the match; a copy of the external id in the body is redundant, not an error.
        body = {k: v for k, v in body.items() if k.lower() != f.name.lower()}
        save = {"allow_save": allow_save, "version": version}
        with self._lock:
            if f.type == "id":
                if not value:
                    return self.create(obj.name, body, **save), True
                return self.update(obj.name, value, body, **save), False
            matches = sorted(self._matches(obj.name, f.name, value))
            if len(matches) > 1:
                raise MultipleChoicesError([_url(obj.name, m, version) for m in matches])
            if matches:
                self.update(obj.name, matches[0], body, **save)
                return matches[0], False
            if update_only:
                # The REST guide documents updateOnly ("prevents a new record from being created") but not
                # its answer when nothing matches; this is the resource's answer for "no such record".
                raise ApiError(404, "NOT_FOUND", _NOT_FOUND)
            return self.create(obj.name, {**body, f.name: value}, **save), True

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside commit together or roll back together, in SQLite and in the cache; nests."""
        with self._lock:
            savepoint = f"sp{self._depth}"
            self._flush()
            self._db.execute(f"SAVEPOINT {savepoint}")
            mark = len(self._undo)
            self._depth += 1
            try:
                yield
                self._flush()
            except BaseException:
                # Every pending write came after the savepoint: dropped, as ROLLBACK TO would undo it.
                self._pending_records.clear()
                self._pending_counters.clear()
                self._db.execute(f"ROLLBACK TO {savepoint}")
                self._db.execute(f"RELEASE {savepoint}")
                self._rollback_cache(mark)
                raise
            else:
                self._db.execute(f"RELEASE {savepoint}")
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._undo.clear()

    def reset(self) -> None:
        """Deletes every record; the Organization row, built from the config, stays."""
        with self._lock:
            self._flush()
            self._db.execute("DELETE FROM records")
            for name, obj in self._objects.items():
                if obj.read_only:
                    continue
                self._records[name].clear()
                self._index[name].clear()
                self._rule_index[name].clear()
            self._undo.clear()

    def close(self) -> None:
        """Closes the database; the Org must not be used afterwards."""
        with self._lock:
            self._db.close()

    def records(self, sobject: str) -> list[dict]:
        name = self.canonical_sobject(sobject)
        with self._lock:
            return [dict(r) for r in self._records[name].values() if not r["IsDeleted"]]

    # --- query -----------------------------------------------------------------------------------

    def query(self, soql_text: str, include_deleted: bool, version: str) -> list[dict] | int:
        try:
            query = soql.parse(soql_text)
            name = self._by_lower.get(query.sobject.lower())
            if name is None:
                raise soql.invalid_type(query)
            obj = self._objects[name]
            with_id = query.is_count or any(r.name.lower() == "id" for r in query.field_refs)
            if not with_id:
                # Every record's attributes carry its URL, so Id is fetched even when not selected.
                query = dataclasses.replace(query, field_refs=(*query.field_refs, soql.FieldRef("Id", 0)))
            with self._lock:
                rows = None if include_deleted else self._indexed_rows(name, query)
                if rows is None:
                    rows = self._records[name].values()
                    rows = list(rows) if include_deleted else [r for r in rows if not r["IsDeleted"]]
                result = soql.execute(query, rows, obj.field_types)
        except soql.SoqlError as exc:
            raise ApiError(400, exc.error_code, exc.message) from None
        if isinstance(result, int):
            return result
        out = []
        for row in result:
            record_id = row["Id"] if with_id else row.pop("Id")
            out.append({"attributes": _attributes(name, record_id, version), **row})
        return out

    def _indexed_rows(self, name: str, query: soql.Query) -> list[Record] | None:
        """The live records a query can match, looked up in the index when its WHERE requires an indexed
        text field (Lead.Email, an external id, ...) to take given values, as Salesforce's indexed
        fields make such lookups selective; None when it does not (every record is scanned). Oldest
        first, as a scan finds them."""
        indexed = {field.lower(): field for field in self._indexed[name]}
        types = self._objects[name].field_types
        for written, values in soql.required_values(query):
            field = indexed.get(written.lower())
            if field is None or soql.family(types[field]) != "string":
                continue
            found = set().union(*(self._matches(name, field, value) for value in values))
            records = self._records[name]
            return [records[record_id] for record_id in sorted(found)]  # ids grow with creation
        return None

    # --- internals -------------------------------------------------------------------------------

    def _load(self) -> None:
        self._records: dict[str, dict[str, Record]] = {name: {} for name in self._objects}
        self._index: dict[str, dict[tuple[str, str], set[str]]] = {name: {} for name in self._objects}
        self._rule_index: dict[str, dict[tuple[str, str], set[str]]] = {name: {} for name in self._objects}
        for record_id, sobject, data in self._db.execute("SELECT id, sobject, data FROM records"):
            if sobject in self._records:
                record = json.loads(data)
                self._records[sobject][record_id] = record
                self._reindex(sobject, None, record)
        # Keyed by the canonical id so that lookups find it; its Id is the config's org_id as written,
        # the organizationId that login answers.
        organization = self._organization()
        self._records[ORGANIZATION] = {_canonical_id(organization["Id"]): organization}
        counters = dict(self._db.execute("SELECT name, value FROM counters"))
        self._seq = counters.get("id", 0)
        self._case_number = counters.get("CaseNumber", 1000)

    def _organization(self) -> Record:
        """The one Organization row, from the config; never stored, so a reset or restart rebuilds it."""
        config = self.config
        return {
            "Id": config.org_id,
            "IsDeleted": False,  # internal: every stored record has it, Organization does not describe it
            "Name": ORG_NAME,
            "OrganizationType": "Developer Edition",
            "InstanceName": config.instance_name,
            "IsSandbox": config.is_sandbox,
            "IsReadOnly": False,
            "LanguageLocaleKey": "en_US",
            "DefaultLocaleSidKey": "en_US",
            "TimeZoneSidKey": "America/Los_Angeles",
            "CreatedDate": ORG_CREATED,
            "CreatedById": self._user_id,
            "LastModifiedDate": ORG_CREATED,
            "LastModifiedById": self._user_id,
            "SystemModstamp": ORG_CREATED,
        }

    def _writable(self, sobject: str, operation: str) -> SObject:
        """The metadata of `sobject` if `operation` (insert, update, delete) may change its records."""
        obj = self.object(sobject)
        if not obj.read_only:
            return obj
        if operation == "delete":
            # Salesforce's words for an operation an entity type has no call for ("entity type
            # Opportunity History does not support create"); the REST body for delete is not documented.
            raise ApiError(
                400, "INVALID_TYPE_FOR_OPERATION", f"entity type {obj.name} does not support delete"
            )
        # What REST answers for an entity type that cannot be written at all, e.g. POST to Flow or
        # PATCH to a custom metadata type: "entity type cannot be inserted: Flow" (the object's label).
        done = {"insert": "inserted", "update": "updated"}[operation]
        raise ApiError(
            400, "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", f"entity type cannot be {done}: {obj.label}"
        )

    def _now(self) -> str:
        # Never step backwards, so that LastModifiedDate orders writes even if the wall clock does.
        now = self._clock().astimezone(UTC)
        second = now.replace(microsecond=0)
        if second != self._stamp_second:  # format_datetime keeps whole seconds: one strftime per second
            self._stamp_second, self._stamp_text = second, format_datetime(now)
        stamp = max(self._stamp_text, self._last_stamp)
        self._last_stamp = stamp
        return stamp

    def _next(self, counter: str) -> int:
        value = (self._seq if counter == "id" else self._case_number) + 1
        if counter == "id":
            self._seq = value
        else:
            self._case_number = value
        if self._depth:
            self._pending_counters[counter] = value
        else:
            self._db.execute("INSERT OR REPLACE INTO counters VALUES (?, ?)", (counter, value))
        return value

    def _flush(self) -> None:
        """Writes the pending records and counters to SQLite (inside the open savepoint, if any)."""
        if self._pending_records:
            self._db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", self._pending_records)
            self._pending_records.clear()
        if self._pending_counters:
            self._db.executemany(
                "INSERT OR REPLACE INTO counters VALUES (?, ?)", list(self._pending_counters.items())
            )
            self._pending_counters.clear()

    def _find(self, obj: SObject, record_id: str) -> Record:
        record = self._records[obj.name].get(_canonical_id(record_id))
        if record is None:
            raise ApiError(404, "NOT_FOUND", _NOT_FOUND)
        if record["IsDeleted"]:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        return record

    def _insert(
        self,
        obj: SObject,
        values: Record,
        admin: bool = False,
        allow_save: bool = False,
        version: str = DEFAULT_VERSION,
    ) -> str:
        stamp = self._now()
        record: Record = {
            **self._defaults[obj.name],
            "OwnerId": self._user_id,
            "CreatedDate": stamp,
            "CreatedById": self._user_id,
            "LastModifiedDate": stamp,
            "LastModifiedById": self._user_id,
            "SystemModstamp": stamp,
        }
        record.update({k: v for k, v in values.items() if v is not None or k not in record})
        self._check_references(obj, record)
        record_id = ids.make_id(obj.key_prefix, self._next("id"))
        record["Id"] = record_id
        record["IsDeleted"] = False
        if obj.name == "Case":
            record["CaseNumber"] = f"{self._next('CaseNumber'):08d}"
        _derive(obj.name, record, values)
        if not admin:  # a data load as seeding does it runs no duplicate rules
            self._check_duplicates(obj, record, allow_save, version)
        self._check_unique(obj, record)
        self._put(obj.name, {k: v for k, v in record.items() if v is not None})
        return record_id

    def _convert_lead(self, lead: Record) -> Record:
        """The Lead's values once converted: its Contact and Account created from it, as convertLead does."""
        account_id = lead.get("ConvertedAccountId")
        if account_id is None:
            parts = (lead.get(n) for n in ("FirstName", "MiddleName", "LastName", "Suffix"))
            name = lead.get("Company") or " ".join(p for p in parts if p) or None
            account = {"Name": name, **_mapped(lead, _LEAD_TO_ACCOUNT)}
            account_id = self._insert(self._objects["Account"], account, admin=True)
        contact = {**_mapped(lead, _LEAD_TO_CONTACT), "AccountId": account_id}
        contact_id = self._insert(self._objects["Contact"], contact, admin=True)
        return {
            "ConvertedDate": self._clock().astimezone(UTC).date().isoformat(),
            **lead,
            "ConvertedAccountId": account_id,
            "ConvertedContactId": contact_id,
        }

    def _update(
        self,
        obj: SObject,
        record: Record,
        values: Record,
        allow_save: bool = False,
        version: str = DEFAULT_VERSION,
    ) -> None:
        if obj.name == "Lead" and record.get("IsConverted"):
            raise RecordError([error("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")])
        stamp = self._now()
        new = {
            **record,
            **values,
            "LastModifiedDate": stamp,
            "LastModifiedById": self._user_id,
            "SystemModstamp": stamp,
        }
        self._check_references(obj, new, values)
        _derive(obj.name, new, values)
        self._check_duplicates(obj, new, allow_save, version)
        self._check_unique(obj, new)
        self._put(obj.name, {k: v for k, v in new.items() if v is not None})

    def _check_references(self, obj: SObject, record: Record, changed: Record | None = None) -> None:
        checked = self._checked_references[obj.name]
        for name, value in (changed if changed is not None else record).items():
            check = checked.get(name)
            if check is None:  # not a canonical field name
                check = obj.by_lower[name.lower()].type == "reference" and name not in _AUDIT
            if not check or value is None:
                continue
            target = self._by_prefix.get(value[:3])
            exists = (
                value in self._user_ids
                if value[:3] == KEY_PREFIXES["User"]
                else target is None or not self._records[target].get(value, {"IsDeleted": True})["IsDeleted"]
            )
            if not exists:
                raise RecordError(
                    [error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name])]
                )

    def _matches(self, sobject: str, field: str, value: Any) -> set[str]:
        return self._index[sobject].get((field, _key(value)), set())

    def _check_unique(self, obj: SObject, record: Record) -> None:
        for name in self._unique[obj.name]:
            if record.get(name) is None:
                continue
            others = self._matches(obj.name, name, record[name]) - {record["Id"]}
            if others:
                raise RecordError(
                    [
                        error(
                            "DUPLICATE_VALUE",
                            f"duplicate value found: {name} duplicates value on record with id: "
                            f"{min(others)}",
                        )
                    ]
                )

    def _check_duplicates(self, obj: SObject, record: Record, allow_save: bool, version: str) -> None:
        """Refuses the save (DUPLICATES_DETECTED) when another live record has every field of a rule set
        to the same value; a rule that only alerts lets `allow_save` through."""
        for rule in self._duplicate_rules.for_object(obj.name):
            if rule.allow_save and allow_save:
                continue
            keys = [match_key(record.get(name)) for name in rule.fields]
            if any(key is None for key in keys):
                continue
            index = self._rule_index[obj.name]
            found = set.intersection(
                *(index.get((n, k), set()) for n, k in zip(rule.fields, keys, strict=True))
            )
            found.discard(record["Id"])
            if found:
                raise RecordError([duplicate_error(rule, sorted(found), version)])

    def _put(self, sobject: str, record: Record) -> None:
        records = self._records[sobject]
        previous = records.get(record["Id"])
        row = (record["Id"], sobject, json.dumps(record))
        if self._depth:
            self._pending_records.append(row)
            self._undo.append((sobject, record["Id"], previous))
        else:
            self._db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", row)
        records[record["Id"]] = record
        self._reindex(sobject, previous, record)

    def _reindex(self, sobject: str, old: Record | None, new: Record | None) -> None:
        index = self._index[sobject]
        for name in self._indexed[sobject]:
            if old is not None and not old["IsDeleted"] and old.get(name) is not None:
                index.get((name, _key(old[name])), set()).discard(old["Id"])
            if new is not None and not new["IsDeleted"] and new.get(name) is not None:
                index.setdefault((name, _key(new[name])), set()).add(new["Id"])
        rule_index = self._rule_index[sobject]
        for name in self._rule_fields[sobject]:
            old_key = match_key(old.get(name)) if old is not None and not old["IsDeleted"] else None
            new_key = match_key(new.get(name)) if new is not None and not new["IsDeleted"] else None
            if old_key is not None:
                rule_index.get((name, old_key), set()).discard(old["Id"])
            if new_key is not None:
                rule_index.setdefault((name, new_key), set()).add(new["Id"])

    def _rollback_cache(self, mark: int) -> None:
        while len(self._undo) > mark:
            sobject, record_id, previous = self._undo.pop()
            current = self._records[sobject].pop(record_id, None)
            if previous is not None:
                self._records[sobject][record_id] = previous
            self._reindex(sobject, current, previous)


def _refuse(errors: list[dict[str, Any]]) -> NoReturn:
    first = errors[0]
    if first["statusCode"] in PARSE_ERRORS:
        # Refused while the body was read, before any DML: Salesforce's error then carries no "fields".
        raise ApiError(400, first["statusCode"], first["message"])
    raise RecordError(errors)


def _canonical_id(record_id: str) -> str:
    """The 18-character form of `record_id`; ApiError MALFORMED_ID if it is no id."""
    try:
        return ids.to18(record_id)
    except ValueError:
        raise ApiError(400, "MALFORMED_ID", f"malformed id {record_id}") from None


def _key(value: Any) -> str:
    # External ids and unique text match case-insensitively, as Salesforce's default indexes do.
    return str(value).lower()


def _mapped(source: Record, mapping: dict[str, str]) -> Record:
    return {target: source[name] for name, target in mapping.items() if source.get(name) is not None}


def _url(sobject: str, record_id: str, version: str) -> str:
    return f"/services/data/v{version}/sobjects/{sobject}/{record_id}"


def _attributes(sobject: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": sobject, "url": _url(sobject, record_id, version)}


def _derive(sobject: str, record: Record, changed: Record) -> None:
    """Fields Salesforce computes from others: names, compound addresses, case and opportunity state."""
    if sobject in ("Lead", "Contact"):
        record["Name"] = " ".join([p for p in map(record.get, _NAME_PARTS) if p]) or None
    for compound, names in _ADDRESS_FIELDS.get(sobject, {}).items():
        parts = list(map(record.get, names))
        # Stored values are JSON's (text, numbers, booleans): count(None) counts exactly the unset parts.
        unset = parts.count(None) == len(parts)
        record[compound] = None if unset else dict(zip(_ADDRESS_PARTS, parts, strict=True))
    if sobject == "Case":
        closed = record.get("Status") == "Closed"
        if closed and not record.get("IsClosed"):
            record["ClosedDate"] = record["LastModifiedDate"]
        record["IsClosed"] = closed
    if sobject == "Opportunity" and record.get("StageName") in OPPORTUNITY_STAGES:
        probability, category, closed, won = OPPORTUNITY_STAGES[record["StageName"]]
        if "StageName" in changed:
            if "Probability" not in changed:
                record["Probability"] = float(probability)
            if "ForecastCategoryName" not in changed:
                record["ForecastCategoryName"] = "Commit" if category == "Forecast" else category
            record["ForecastCategory"] = category
        record["IsClosed"], record["IsWon"] = closed, won
        amount, prob = record.get("Amount"), record.get("Probability")
        record["ExpectedRevenue"] = amount * prob / 100 if amount is not None and prob is not None else None
