"""The read-only Organization object: one row from the org config, queryable and described, never written."""

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from emulator.auth import login_response
from emulator.config import OrgConfig, User
from emulator.errors import ApiError
from emulator.org import Org
from tests.emulator.conftest import API, calls

ORG_ID = "00D000000000001AAA"
V = "59.0"
INSERT = [
    {
        "message": "entity type cannot be inserted: Organization",
        "errorCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
    }
]
UPDATE = [
    {
        "message": "entity type cannot be updated: Organization",
        "errorCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
    }
]
DELETE = [
    {"message": "entity type Organization does not support delete", "errorCode": "INVALID_TYPE_FOR_OPERATION"}
]
ROW = {
    "attributes": {"type": "Organization", "url": f"/services/data/v{V}/sobjects/Organization/{ORG_ID}"},
    "Id": ORG_ID,
    "Name": "Emulated Org",
    "IsSandbox": False,
    "OrganizationType": "Developer Edition",
    "InstanceName": "EMU1",
    "NamespacePrefix": None,
}
SELECT = "SELECT Id, Name, IsSandbox, OrganizationType, InstanceName, NamespacePrefix FROM Organization"


@pytest.fixture
def org(tmp_path):
    return Org(tmp_path / "org.db", OrgConfig())


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (OrgConfig(), ROW),
        (
            OrgConfig(org_id="00D5e000000AbCdEAA", instance_name="NA42", is_sandbox=True),
            {
                **ROW,
                "attributes": {
                    "type": "Organization",
                    "url": f"/services/data/v{V}/sobjects/Organization/00D5e000000AbCdEAA",
                },
                "Id": "00D5e000000AbCdEAA",
                "IsSandbox": True,
                "InstanceName": "NA42",
            },
        ),
    ],
)
def test_one_row_from_the_config(tmp_path, config, expected):
    org = Org(tmp_path / "org.db", config)
    assert org.query(SELECT, False, V) == [expected]
    assert org.query("SELECT COUNT() FROM Organization", False, V) == 1


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda org: org.create("Organization", {"Name": "x"}), (400, INSERT)),
        (lambda org: org.seed("Organization", {"Name": "x"}), (400, INSERT)),
        (lambda org: org.update("organization", ORG_ID, {"Name": "x"}), (400, UPDATE)),
        (lambda org: org.upsert("Organization", "Id", ORG_ID, {"Name": "x"}), (400, UPDATE)),
        (lambda org: org.delete("Organization", ORG_ID), (400, DELETE)),
        (lambda org: org.upsert("Organization", "Name", "x", {}), (404, None)),
    ],
)
def test_dml_is_refused(org, call, expected):
    with pytest.raises(ApiError) as exc:
        call(org)
    assert (exc.value.status, exc.value.to_body() if expected[1] else None) == expected
    assert org.query(SELECT, False, V) == [ROW]


def test_reset_and_reopen_keep_it(tmp_path):
    org = Org(tmp_path / "org.db", OrgConfig())
    org.create("Lead", {"LastName": "A", "Company": "C"})
    org.reset()
    assert (org.records("Lead"), len(org.records("Organization"))) == ([], 1)
    org.close()
    assert Org(tmp_path / "org.db", OrgConfig()).query(SELECT, False, V) == [ROW]


def test_no_custom_fields_on_organization(tmp_path):
    config = OrgConfig(custom_fields={"Organization": ()})
    with pytest.raises(ValueError, match="custom_fields: unknown object 'Organization'"):
        Org(tmp_path / "org.db", config)


@pytest.mark.parametrize(
    ("user_sandbox", "org_sandbox", "expected"),
    [(None, False, "false"), (None, True, "true"), ("uat", False, "true")],
)
def test_login_result_sandbox_flag(user_sandbox, org_sandbox, expected):
    user = User("a@example.com", "p", "T", sandbox=user_sandbox)
    body = login_response(
        OrgConfig(is_sandbox=org_sandbox, users=(user,)), user, "sid", "https://h", V
    ).decode()
    assert f"<sandbox>{expected}</sandbox>" in body


# --- through HTTP, with simple-salesforce ----------------------------------------------------------


def test_is_sandbox_through_simple_salesforce(emu, sf):
    assert sf.is_sandbox() is False
    assert sf.query(SELECT)["records"] == [
        {
            **ROW,
            "attributes": {
                **ROW["attributes"],
                "url": f"/services/data/v{API}/sobjects/Organization/{ORG_ID}",
            },
        }
    ]
    assert sf.Organization.get(ORG_ID)["OrganizationType"] == "Developer Edition"
    assert calls(emu) == {"login": 1, "query": 2, "get": 1}


def test_described_as_read_only(emu, sf):
    described = {o["name"]: o for o in sf.describe()["sobjects"]}["Organization"]
    flags = ("createable", "updateable", "deletable", "queryable", "retrieveable", "keyPrefix", "label")
    assert {k: described[k] for k in flags} == {
        "createable": False,
        "updateable": False,
        "deletable": False,
        "queryable": True,
        "retrieveable": True,
        "keyPrefix": "00D",
        "label": "Organization",
    }
    describe = sf.Organization.describe()
    assert (describe["createable"], describe["updateable"], describe["deletable"]) == (False, False, False)
    fields = {f["name"]: f for f in describe["fields"]}
    assert {
        n: (fields[n]["type"], fields[n]["length"]) for n in ("IsSandbox", "InstanceName", "OrganizationType")
    } == {
        "IsSandbox": ("boolean", 0),
        "InstanceName": ("string", 5),
        "OrganizationType": ("picklist", 40),
    }
    assert not any(f["createable"] or f["updateable"] for f in describe["fields"])


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("POST", "sobjects/Organization", {"Name": "x"}, INSERT),
        ("PATCH", f"sobjects/Organization/{ORG_ID}", {"Name": "x"}, UPDATE),
        ("DELETE", f"sobjects/Organization/{ORG_ID}", None, DELETE),
    ],
)
def test_rest_writes_are_refused(emu, raw, method, path, body, expected):
    response = raw(method, path, json=body)
    assert (response.status_code, response.json()) == (400, expected)


def test_simple_salesforce_sees_a_malformed_request(emu, sf):
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Organization.create({"Name": "x"})
    assert exc.value.content == INSERT


def test_collections_refuse_it_per_record(emu, sf):
    created = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"records": [{"attributes": {"type": "Organization"}, "Name": "x"}]},
    )
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ORG_ID})
    error = {
        "statusCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
        "message": INSERT[0]["message"],
        "fields": [],
    }
    assert created == [{"id": None, "success": False, "errors": [error]}]
    delete_error = {"statusCode": "INVALID_TYPE_FOR_OPERATION", "message": DELETE[0]["message"], "fields": []}
    assert deleted == [{"id": ORG_ID, "success": False, "errors": [delete_error]}]


def test_admin_reset_keeps_it(emu, sf):
    emu.admin("POST", "reset")
    assert [r["Id"] for r in emu.admin("GET", "records/Organization")["records"]] == [ORG_ID]
    assert sf.is_sandbox() is False
