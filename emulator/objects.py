"""Metadata of the emulated sObjects: standard fields as Salesforce documents them, plus custom fields."""

from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from functools import cached_property
from typing import Any

from emulator.config import CustomField, OrgConfig

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "address": "urn:address",
}
_TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "picklist", "id", "reference"})


@dataclass(frozen=True)
class Field:
    """One field of an sObject, with the properties describe reports and validation needs."""

    name: str
    label: str
    type: str
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted: bool = False  # defaultedOnCreate
    picklist: tuple[str, ...] = ()
    picklist_default: str | None = None
    restricted: bool = False
    external_id: bool = False
    unique: bool = False
    id_lookup: bool = False
    name_field: bool = False
    precision: int = 0
    scale: int = 0
    digits: int = 0
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    calculated: bool = False
    auto_number: bool = False
    custom: bool = False

    @property
    def required(self) -> bool:
        """Salesforce's rule: not nillable, createable and not defaulted means the caller must set it."""
        return not self.nillable and self.createable and not self.defaulted and self.type != "boolean"

    def describe(self) -> dict[str, Any]:
        text = self.type in _TEXT_TYPES
        long_text = self.type == "textarea" and self.length > 255
        return {
            "aggregatable": not long_text and self.type not in ("address", "boolean"),
            "aiPredictionField": False,
            "autoNumber": self.auto_number,
            "byteLength": self.length * 3 if text else 0,
            "calculated": self.calculated,
            "calculatedFormula": None,
            "cascadeDelete": False,
            "caseSensitive": False,
            "compoundFieldName": None,
            "controllerName": None,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": False if self.type == "boolean" and self.defaulted else None,
            "defaultValueFormula": None,
            "defaultedOnCreate": self.defaulted,
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": self.digits,
            "displayLocationInDecimal": False,
            "encrypted": False,
            "externalId": self.external_id,
            "extraTypeInfo": None,
            "filterable": not long_text and self.type != "address",
            "filteredLookupInfo": None,
            "formulaTreatNullNumberAsZero": False,
            "groupable": text and not long_text,
            "highScaleNumber": False,
            "htmlFormatted": False,
            "idLookup": self.id_lookup,
            "inlineHelpText": None,
            "label": self.label,
            "length": self.length,
            "mask": None,
            "maskType": None,
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": len(self.reference_to) > 1,
            "nillable": self.nillable,
            "permissionable": self.nillable and self.custom,
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": v == self.picklist_default,
                    "label": v,
                    "validFor": None,
                    "value": v,
                }
                for v in self.picklist
            ],
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "precision": self.precision,
            "queryByDistance": False,
            "referenceTargetField": None,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "relationshipOrder": None,
            "restrictedDelete": False,
            "restrictedPicklist": self.restricted,
            "scale": self.scale,
            "searchPrefilterable": False,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": not long_text and self.type != "address",
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": False,
        }


@dataclass(frozen=True)
class SObject:
    """An sObject type: its names, key prefix and fields (looked up case-insensitively)."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: tuple[Field, ...]
    read_only: bool = False  # a setup object clients may query but not create, update or delete
    by_lower: dict[str, Field] = dc_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_lower", {f.name.lower(): f for f in self.fields})

    def field(self, name: str) -> Field | None:
        return self.by_lower.get(name.lower())

    @cached_property
    def field_types(self) -> dict[str, str]:
        """Canonical field name -> describe type, as the SOQL engine wants them."""
        return {f.name: f.type for f in self.fields}

    # Looked up once per object rather than once per record written (the Bulk ingest of a job's rows).

    @cached_property
    def by_name(self) -> dict[str, Field]:
        """Canonical field name -> the field that name finds case-insensitively."""
        return {f.name: f for f in self.by_lower.values()}

    @cached_property
    def required_names(self) -> tuple[str, ...]:
        """The fields a create must set (Field.required), in field order."""
        return tuple(f.name for f in self.fields if f.required)

    @cached_property
    def createable_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.by_lower.values() if f.createable)

    @cached_property
    def updateable_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.by_lower.values() if f.updateable)

    def describe_global(self, version: str) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        data = not self.read_only  # a record object: every DML call, feeds, layouts and search
        return {
            "activateable": False,
            "createable": data,
            "custom": False,
            "customSetting": False,
            "deepCloneable": False,
            "deletable": data,
            "deprecatedAndHidden": False,
            "feedEnabled": data,
            "hasSubtypes": False,
            "isInterface": False,
            "isSubtype": False,
            "keyPrefix": self.key_prefix,
            "label": self.label,
            "labelPlural": self.label_plural,
            "layoutable": data,
            "mergeable": data,
            "mruEnabled": data,
            "name": self.name,
            "queryable": True,
            "replicateable": data,
            "retrieveable": True,
            "searchable": data,
            "triggerable": data,
            "undeletable": data,
            "updateable": data,
            "urls": {
                "rowTemplate": f"{base}/{{ID}}",
                "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
                "describe": f"{base}/describe",
                "sobject": base,
            },
        }

    def describe(self, version: str) -> dict[str, Any]:
        body = self.describe_global(version)
        base = body["urls"]["sobject"]
        body["urls"] = {
            **body["urls"],
            "compactLayouts": f"{base}/describe/compactLayouts",
            "approvalLayouts": f"{base}/describe/approvalLayouts",
            "listviews": f"{base}/listviews",
            "quickActions": f"{base}/quickActions",
            "layouts": f"{base}/describe/layouts",
        }
        body.update(
            {
                "actionOverrides": [],
                "childRelationships": [],
                "compactLayoutable": True,
                "fields": [f.describe() for f in self.fields],
                "listviewable": None,
                "lookupLayoutable": None,
                "namedLayoutInfos": [],
                "networkScopeFieldName": None,
                "recordTypeInfos": [
                    {
                        "active": True,
                        "available": True,
                        "defaultRecordTypeMapping": True,
                        "developerName": "Master",
                        "master": True,
                        "name": "Master",
                        "recordTypeId": "012000000000000AAA",
                        "urls": {"layout": f"{base}/describe/layouts/012000000000000AAA"},
                    }
                ],
                "searchLayoutable": True,
                "sobjectDescribeOption": "FULL",
                "supportedScopes": [],
            }
        )
        return body


# --- builders for the standard field tables below -------------------------------------------------


def _s(name: str, label: str, length: int, **kw: Any) -> Field:
    return Field(name, label, kw.pop("type", "string"), length, **kw)


def _pick(name: str, label: str, values: tuple[str, ...], default: str | None = None, **kw: Any) -> Field:
    return Field(name, label, "picklist", 255, picklist=values, picklist_default=default, **kw)


def _ref(name: str, label: str, to: tuple[str, ...], rel: str, **kw: Any) -> Field:
    return Field(name, label, "reference", 18, reference_to=to, relationship_name=rel, **kw)


def _num(name: str, label: str, type_: str, precision: int = 18, scale: int = 0, **kw: Any) -> Field:
    if type_ == "int":
        return Field(name, label, "int", digits=precision, **kw)
    return Field(name, label, type_, precision=precision, scale=scale, **kw)


def _ro(f: Field) -> Field:
    return replace(f, createable=False, updateable=False)


def _flag(name: str, label: str, **kw: Any) -> Field:
    return Field(name, label, "boolean", nillable=False, defaulted=True, **kw)


def _system_fields(obj: str) -> tuple[Field, ...]:
    user = ("User",)
    return (
        Field(
            "Id",
            f"{obj} ID",
            "id",
            18,
            nillable=False,
            createable=False,
            updateable=False,
            defaulted=True,
            id_lookup=True,
        ),
        _ro(_flag("IsDeleted", "Deleted")),
        _ro(Field("CreatedDate", "Created Date", "datetime", nillable=False, defaulted=True)),
        _ro(_ref("CreatedById", "Created By ID", user, "CreatedBy", nillable=False, defaulted=True)),
        _ro(Field("LastModifiedDate", "Last Modified Date", "datetime", nillable=False, defaulted=True)),
        _ro(
            _ref(
                "LastModifiedById",
                "Last Modified By ID",
                user,
                "LastModifiedBy",
                nillable=False,
                defaulted=True,
            )
        ),
        _ro(Field("SystemModstamp", "System Modstamp", "datetime", nillable=False, defaulted=True)),
        _ro(Field("LastActivityDate", "Last Activity", "date")),
        _ro(Field("LastViewedDate", "Last Viewed Date", "datetime")),
        _ro(Field("LastReferencedDate", "Last Referenced Date", "datetime")),
    )


def _owner(obj: str) -> Field:
    return _ref(
        "OwnerId",
        "Owner ID",
        ("Group", "User") if obj in ("Lead", "Case") else ("User",),
        "Owner",
        nillable=False,
        defaulted=True,
    )


def _address(prefix: str, label: str) -> tuple[Field, ...]:
    p = prefix
    return (
        Field(f"{p}Street", f"{label} Street", "textarea", 255),
        _s(f"{p}City", f"{label} City", 40),
        _s(f"{p}State", f"{label} State/Province", 80),
        _s(f"{p}PostalCode", f"{label} Zip/Postal Code", 20),
        _s(f"{p}Country", f"{label} Country", 80),
        _num(f"{p}Latitude", f"{label} Latitude", "double", 18, 15),
        _num(f"{p}Longitude", f"{label} Longitude", "double", 18, 15),
        _pick(
            f"{p}GeocodeAccuracy",
            f"{label} Geocode Accuracy",
            (
                "Address",
                "NearAddress",
                "Block",
                "Street",
                "ExtendedZip",
                "Zip",
                "Neighborhood",
                "City",
                "County",
                "State",
                "Unknown",
            ),
        ),
        _ro(Field(f"{p}Address", f"{label} Address".strip(), "address")),
    )


def _plain_address(label: str) -> tuple[Field, ...]:
    # Lead's address fields carry no prefix and plain labels ("Street", "City").
    return tuple(replace(f, label=f.label.strip()) for f in _address("", ""))[:-1] + (
        _ro(Field("Address", label, "address")),
    )


SALUTATIONS = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")
LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)
RATINGS = ("Hot", "Warm", "Cold")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
INDUSTRIES = (
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
    "Other",
)
CLEAN_STATUSES = (
    "Matched",
    "Different",
    "Acknowledged",
    "NotFound",
    "Inactive",
    "Pending",
    "SelectMatch",
    "Skipped",
)
OPPORTUNITY_STAGES = {  # stage -> (probability, forecast category, closed, won)
    "Prospecting": (10, "Pipeline", False, False),
    "Qualification": (10, "Pipeline", False, False),
    "Needs Analysis": (20, "Pipeline", False, False),
    "Value Proposition": (50, "Pipeline", False, False),
    "Id. Decision Makers": (60, "Pipeline", False, False),
    "Perception Analysis": (70, "Pipeline", False, False),
    "Proposal/Price Quote": (75, "Pipeline", False, False),
    "Negotiation/Review": (90, "Pipeline", False, False),
    "Closed Won": (100, "Closed", True, True),
    "Closed Lost": (0, "Omitted", True, False),
}
CASE_STATUSES = ("New", "Working", "Escalated", "Closed")


def _person_name(obj: str) -> tuple[Field, ...]:
    return (
        _s("LastName", "Last Name", 80, nillable=False),
        _s("FirstName", "First Name", 40),
        _pick("Salutation", "Salutation", SALUTATIONS),
        _s("MiddleName", "Middle Name", 40),
        _s("Suffix", "Suffix", 40),
        _ro(_s("Name", "Full Name", 121, name_field=True)),
    )


def _lead() -> tuple[Field, ...]:
    return (
        *_system_fields("Lead")[:2],
        _ro(_ref("MasterRecordId", "Master Record ID", ("Lead",), "MasterRecord")),
        *_person_name("Lead"),
        _s("Title", "Title", 128),
        _s("Company", "Company", 255, nillable=False),
        *_plain_address("Address"),
        _s("Phone", "Phone", 40, type="phone"),
        _s("MobilePhone", "Mobile Phone", 40, type="phone"),
        _s("Fax", "Fax", 40, type="phone"),
        _s("Email", "Email", 80, type="email", id_lookup=True),
        _s("Website", "Website", 255, type="url"),
        _ro(_s("PhotoUrl", "Photo URL", 255, type="url")),
        Field("Description", "Description", "textarea", 32000),
        _pick("LeadSource", "Lead Source", LEAD_SOURCES),
        _pick("Status", "Status", LEAD_STATUSES, LEAD_STATUSES[0], nillable=False, defaulted=True),
        _pick("Industry", "Industry", INDUSTRIES),
        _pick("Rating", "Rating", RATINGS),
        _num("AnnualRevenue", "Annual Revenue", "currency", 18, 0),
        _num("NumberOfEmployees", "Employees", "int", 8),
        _owner("Lead"),
        _flag("HasOptedOutOfEmail", "Email Opt Out"),
        _ro(_flag("IsConverted", "Converted")),
        _ro(Field("ConvertedDate", "Converted Date", "date")),
        _ro(_ref("ConvertedAccountId", "Converted Account ID", ("Account",), "ConvertedAccount")),
        _ro(_ref("ConvertedContactId", "Converted Contact ID", ("Contact",), "ConvertedContact")),
        _ro(
            _ref(
                "ConvertedOpportunityId", "Converted Opportunity ID", ("Opportunity",), "ConvertedOpportunity"
            )
        ),
        _flag("IsUnreadByOwner", "Unread By Owner"),
        *_system_fields("Lead")[2:],
        _s("Jigsaw", "Data.com Key", 20),
        _ro(_s("JigsawContactId", "Jigsaw Contact ID", 20)),
        _pick("CleanStatus", "Clean Status", CLEAN_STATUSES),
        _s("CompanyDunsNumber", "Company D-U-N-S Number", 9),
        _s("EmailBouncedReason", "Email Bounced Reason", 255),
        Field("EmailBouncedDate", "Email Bounced Date", "datetime"),
    )


def _account() -> tuple[Field, ...]:
    return (
        *_system_fields("Account")[:2],
        _ro(_ref("MasterRecordId", "Master Record ID", ("Account",), "MasterRecord")),
        _s("Name", "Account Name", 255, nillable=False, name_field=True),
        _pick(
            "Type",
            "Account Type",
            (
                "Prospect",
                "Customer - Direct",
                "Customer - Channel",
                "Channel Partner / Reseller",
                "Installation Partner",
                "Technology Partner",
                "Other",
            ),
        ),
        _ref("ParentId", "Parent Account ID", ("Account",), "Parent"),
        *_address("Billing", "Billing"),
        *_address("Shipping", "Shipping"),
        _s("Phone", "Account Phone", 40, type="phone"),
        _s("Fax", "Account Fax", 40, type="phone"),
        _s("AccountNumber", "Account Number", 40),
        _s("Website", "Website", 255, type="url"),
        _ro(_s("PhotoUrl", "Photo URL", 255, type="url")),
        _s("Sic", "SIC Code", 20),
        _pick("Industry", "Industry", INDUSTRIES),
        _num("AnnualRevenue", "Annual Revenue", "currency", 18, 0),
        _num("NumberOfEmployees", "Employees", "int", 8),
        _pick("Ownership", "Ownership", ("Public", "Private", "Subsidiary", "Other")),
        _s("TickerSymbol", "Ticker Symbol", 20),
        Field("Description", "Account Description", "textarea", 32000),
        _pick("Rating", "Account Rating", RATINGS),
        _s("Site", "Account Site", 80),
        _owner("Account"),
        *_system_fields("Account")[2:],
        _s("Jigsaw", "Data.com Key", 20),
        _ro(_s("JigsawCompanyId", "Jigsaw Company ID", 20)),
        _pick("CleanStatus", "Clean Status", CLEAN_STATUSES),
        _pick("AccountSource", "Account Source", LEAD_SOURCES),
        _s("DunsNumber", "D-U-N-S Number", 9),
        _s("Tradestyle", "Tradestyle", 255),
        _s("NaicsCode", "NAICS Code", 8),
        _s("NaicsDesc", "NAICS Description", 120),
        _s("YearStarted", "Year Started", 4),
        _s("SicDesc", "SIC Description", 80),
    )


def _contact() -> tuple[Field, ...]:
    return (
        *_system_fields("Contact")[:2],
        _ro(_ref("MasterRecordId", "Master Record ID", ("Contact",), "MasterRecord")),
        _ref("AccountId", "Account ID", ("Account",), "Account"),
        *_person_name("Contact"),
        *_address("Other", "Other"),
        *_address("Mailing", "Mailing"),
        _s("Phone", "Business Phone", 40, type="phone"),
        _s("Fax", "Business Fax", 40, type="phone"),
        _s("MobilePhone", "Mobile Phone", 40, type="phone"),
        _s("HomePhone", "Home Phone", 40, type="phone"),
        _s("OtherPhone", "Other Phone", 40, type="phone"),
        _s("AssistantPhone", "Asst. Phone", 40, type="phone"),
        _ref("ReportsToId", "Reports To ID", ("Contact",), "ReportsTo"),
        _s("Email", "Email", 80, type="email", id_lookup=True),
        _s("Title", "Title", 128),
        _s("Department", "Department", 80),
        _s("AssistantName", "Assistant's Name", 40),
        _pick("LeadSource", "Lead Source", LEAD_SOURCES),
        Field("Birthdate", "Birthdate", "date"),
        Field("Description", "Contact Description", "textarea", 32000),
        _owner("Contact"),
        _flag("HasOptedOutOfEmail", "Email Opt Out"),
        _flag("HasOptedOutOfFax", "Fax Opt Out"),
        _flag("DoNotCall", "Do Not Call"),
        *_system_fields("Contact")[2:],
        _s("EmailBouncedReason", "Email Bounced Reason", 255),
        Field("EmailBouncedDate", "Email Bounced Date", "datetime"),
        _ro(_flag("IsEmailBounced", "Is Email Bounced")),
        _ro(_s("PhotoUrl", "Photo URL", 255, type="url")),
        _s("Jigsaw", "Data.com Key", 20),
        _ro(_s("JigsawContactId", "Jigsaw Contact ID", 20)),
        _pick("CleanStatus", "Clean Status", CLEAN_STATUSES),
    )


def _case() -> tuple[Field, ...]:
    return (
        *_system_fields("Case")[:2],
        _ro(_ref("MasterRecordId", "Master Record ID", ("Case",), "MasterRecord")),
        _ro(
            _s(
                "CaseNumber",
                "Case Number",
                30,
                nillable=False,
                defaulted=True,
                auto_number=True,
                name_field=True,
                id_lookup=True,
            )
        ),
        _ref("ContactId", "Contact ID", ("Contact",), "Contact"),
        _ref("AccountId", "Account ID", ("Account",), "Account"),
        _ref("ParentId", "Parent Case ID", ("Case",), "Parent"),
        _s("SuppliedName", "Web Name", 80),
        _s("SuppliedEmail", "Web Email", 80, type="email"),
        _s("SuppliedPhone", "Web Phone", 40),
        _s("SuppliedCompany", "Web Company", 80),
        _pick("Type", "Case Type", ("Mechanical", "Electrical", "Electronic", "Structural", "Other")),
        _pick("Status", "Status", CASE_STATUSES, "New", nillable=False, defaulted=True),
        _pick(
            "Reason",
            "Case Reason",
            (
                "Installation",
                "Equipment Complexity",
                "Performance",
                "Breakdown",
                "Equipment Design",
                "Feedback",
                "Other",
            ),
        ),
        _pick("Origin", "Case Origin", ("Phone", "Email", "Web")),
        _s("Subject", "Subject", 255),
        _pick("Priority", "Priority", ("High", "Medium", "Low"), "Medium", defaulted=True),
        Field("Description", "Description", "textarea", 32000),
        _ro(_flag("IsClosed", "Closed")),
        _ro(Field("ClosedDate", "Closed Date", "datetime")),
        _flag("IsEscalated", "Escalated"),
        _owner("Case"),
        *_system_fields("Case")[2:],
        _ro(_s("ContactPhone", "Contact Phone", 40, type="phone")),
        _ro(_s("ContactMobile", "Contact Mobile", 40, type="phone")),
        _ro(_s("ContactEmail", "Contact Email", 80, type="email")),
        _ro(_s("ContactFax", "Contact Fax", 40, type="phone")),
        Field("Comments", "Internal Comments", "textarea", 4000),
    )


def _opportunity() -> tuple[Field, ...]:
    return (
        *_system_fields("Opportunity")[:2],
        _ref("AccountId", "Account ID", ("Account",), "Account"),
        _flag("IsPrivate", "Private"),
        _s("Name", "Name", 120, nillable=False, name_field=True),
        Field("Description", "Description", "textarea", 32000),
        _pick("StageName", "Stage", tuple(OPPORTUNITY_STAGES), nillable=False),
        _num("Amount", "Amount", "currency", 18, 2),
        _num("Probability", "Probability (%)", "percent", 3, 0, defaulted=True),
        _ro(_num("ExpectedRevenue", "Expected Amount", "currency", 18, 2, calculated=True)),
        _num("TotalOpportunityQuantity", "Quantity", "double", 18, 2),
        Field("CloseDate", "Close Date", "date", nillable=False),
        _pick(
            "Type",
            "Opportunity Type",
            (
                "Existing Customer - Upgrade",
                "Existing Customer - Replacement",
                "Existing Customer - Downgrade",
                "New Customer",
            ),
        ),
        _s("NextStep", "Next Step", 255),
        _pick("LeadSource", "Lead Source", LEAD_SOURCES),
        _ro(_flag("IsClosed", "Closed")),
        _ro(_flag("IsWon", "Won")),
        _ro(
            _pick(
                "ForecastCategory",
                "Forecast Category",
                ("Omitted", "Pipeline", "BestCase", "Forecast", "Closed"),
                nillable=False,
                defaulted=True,
            )
        ),
        _pick(
            "ForecastCategoryName",
            "Forecast Category",
            ("Omitted", "Pipeline", "Best Case", "Commit", "Closed"),
            defaulted=True,
        ),
        _ref("CampaignId", "Campaign ID", ("Campaign",), "Campaign"),
        _ro(_flag("HasOpportunityLineItem", "Has Line Item")),
        _ref("Pricebook2Id", "Price Book ID", ("Pricebook2",), "Pricebook2"),
        _owner("Opportunity"),
        *_system_fields("Opportunity")[2:],
    )


EDITIONS = (
    "Team Edition",
    "Professional Edition",
    "Enterprise Edition",
    "Developer Edition",
    "Personal Edition",
    "Unlimited Edition",
    "Contact Manager Edition",
    "Base Edition",
)
ORGANIZATION = "Organization"
_AUDIT_FIELDS = ("CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp")


def _organization() -> tuple[Field, ...]:
    # Types and lengths as the Object Reference and the Field Reference give them (OrganizationType is
    # labelled "Edition", InstanceName is 5 long). Every field is read-only here: the emulator's org is
    # built from its config, and the admin would change Company Information in Setup.
    locale = ("en_US",)
    return tuple(
        _ro(f)
        for f in (
            Field("Id", "Organization ID", "id", 18, nillable=False, defaulted=True, id_lookup=True),
            _s("Name", "Name", 80, nillable=False, name_field=True),
            _s("Division", "Division", 80),
            Field("OrganizationType", "Edition", "picklist", 40, picklist=EDITIONS),
            _s("InstanceName", "Instance Name", 5),
            _flag("IsSandbox", "Is Sandbox"),
            _flag("IsReadOnly", "Is Read Only"),
            _s("NamespacePrefix", "Namespace Prefix", 15),
            Field("TrialExpirationDate", "Trial Expiration Date", "datetime"),
            Field("LanguageLocaleKey", "Language", "picklist", 40, nillable=False, picklist=locale),
            Field("DefaultLocaleSidKey", "Locale", "picklist", 40, nillable=False, picklist=locale),
            Field(
                "TimeZoneSidKey",
                "Time Zone",
                "picklist",
                40,
                nillable=False,
                picklist=("America/Los_Angeles",),
            ),
            *(f for f in _system_fields(ORGANIZATION) if f.name in _AUDIT_FIELDS),
        )
    )


# Key prefixes of the objects references may point at, emulated or not.
KEY_PREFIXES = {
    "Lead": "00Q",
    "Account": "001",
    "Contact": "003",
    "Case": "500",
    "Opportunity": "006",
    "User": "005",
    "Group": "00G",
    "Campaign": "701",
    "Pricebook2": "01s",
    ORGANIZATION: "00D",
}

_STANDARD = (
    ("Lead", "Lead", "Leads", "00Q", _lead),
    ("Account", "Account", "Accounts", "001", _account),
    ("Contact", "Contact", "Contacts", "003", _contact),
    ("Case", "Case", "Cases", "500", _case),
    ("Opportunity", "Opportunity", "Opportunities", "006", _opportunity),
)


def custom_field(cf: CustomField) -> Field:
    """The Field of a configured custom field, typed as Salesforce describes such a field."""
    label = cf.name[:-3].replace("_", " ").strip() or cf.name
    nillable = not cf.required
    common: dict[str, Any] = {"custom": True, "nillable": nillable, "unique": cf.unique}
    t = cf.type
    if t in ("string", "textarea", "external_id"):
        f = Field(cf.name, label, "textarea" if t == "textarea" else "string", cf.length or 255, **common)
        if t == "external_id":
            # External ids are indexed for upsert and lookups; uniqueness stays the config's choice,
            # as in Salesforce, where a non-unique external id is what makes upsert answer 300.
            f = replace(f, external_id=True, id_lookup=True)
        return f
    if t in ("email", "phone", "url"):
        return Field(cf.name, label, t, cf.length or {"email": 80, "phone": 40, "url": 255}[t], **common)
    if t in ("number", "double", "currency"):
        scale = cf.scale if cf.scale is not None else (2 if t == "currency" else 0)
        return Field(
            cf.name,
            label,
            "currency" if t == "currency" else "double",
            precision=cf.precision or 18,
            scale=scale,
            **common,
        )
    if t == "int":
        return Field(cf.name, label, "int", digits=cf.precision or 9, **common)
    if t == "boolean":
        return Field(cf.name, label, "boolean", nillable=False, defaulted=True, custom=True)
    if t in ("date", "datetime"):
        return Field(cf.name, label, t, **common)
    if t == "picklist":
        return Field(cf.name, label, "picklist", 255, picklist=cf.values, restricted=cf.restricted, **common)
    raise ValueError(f"unsupported custom field type {t!r}")


def build_objects(config: OrgConfig) -> dict[str, SObject]:
    """Every sObject of the org by canonical name: the standard ones with the config's custom fields,
    then the read-only Organization."""
    known = {name.lower(): name for name, *_ in _STANDARD}
    for obj in config.custom_fields:
        if obj.lower() not in known:
            raise ValueError(f"custom_fields: unknown object {obj!r}; known: {sorted(known.values())}")
    custom = {known[obj.lower()]: fields for obj, fields in config.custom_fields.items()}
    out = {}
    for name, label, plural, prefix, fields in _STANDARD:
        extra = tuple(custom_field(cf) for cf in custom.get(name, ()))
        standard = fields()
        clash = {f.name.lower() for f in standard} & {f.name.lower() for f in extra}
        if clash:
            raise ValueError(f"custom_fields.{name}: duplicate field(s) {sorted(clash)}")
        out[name] = SObject(name, label, plural, prefix, standard + extra)
    # Setup objects after the data objects; they take no custom fields.
    out[ORGANIZATION] = SObject(
        ORGANIZATION, "Organization", "Organizations", KEY_PREFIXES[ORGANIZATION], _organization(), True
    )
    return out
