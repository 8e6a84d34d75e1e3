"""sObject Collections and Composite through `sf.restful`, as the pipeline calls them."""

import pytest

from tests.emulator.conftest import API, calls

ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
    "fields": [],
}
MISSING_COMPANY = {
    "statusCode": "REQUIRED_FIELD_MISSING",
    "message": "Required fields are missing: [Company]",
    "fields": ["Company"],
}
HALTED = [
    {
        "errorCode": "PROCESSING_HALTED",
        "message": "The transaction was rolled back since another operation in the same transaction failed.",
    }
]


def lead(name: str, company: str | None = "Co") -> dict:
    record = {"attributes": {"type": "Lead"}, "LastName": name}
    if company:
        record["Company"] = company
    return record


def stored(emu, sobject: str = "Lead") -> list[str]:
    return sorted(r["LastName"] for r in emu.admin("GET", f"records/{sobject}")["records"])


def test_create_in_request_order_with_per_record_errors(emu, sf):
    records = [lead("A"), lead("B", None), {"attributes": {"type": "Account"}, "Name": "Acme"}, lead("C")]
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert [r["success"] for r in results] == [True, False, True, True]
    assert [r["id"][:3] if r["id"] else None for r in results] == ["00Q", None, "001", "00Q"]
    assert results[1] == {"id": None, "success": False, "errors": [MISSING_COMPANY]}
    assert stored(emu) == ["A", "C"]
    assert calls(emu) == {"login": 1, "collections": 1}


def test_all_or_none_rolls_everything_back(emu, sf):
    records = [lead("A"), lead("B", None), lead("C")]
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
    assert results == [
        {"id": None, "success": False, "errors": [ROLLED_BACK]},
        {"id": None, "success": False, "errors": [MISSING_COMPANY]},
        {"id": None, "success": False, "errors": [ROLLED_BACK]},
    ]
    assert stored(emu) == []


def test_update_and_delete(emu, sf):
    ids = [
        r["id"]
        for r in sf.restful("composite/sobjects", method="POST", json={"records": [lead("A"), lead("B")]})
    ]
    updates = [
        {"attributes": {"type": "Lead"}, "id": ids[0], "FirstName": "Ann"},
        {"attributes": {"type": "Lead"}, "FirstName": "NoId"},
        {"attributes": {"type": "Lead"}, "Id": ids[1], "LastName": "Bee"},
    ]
    results = sf.restful("composite/sobjects", method="PATCH", json={"records": updates})
    assert results == [
        {"id": ids[0], "success": True, "errors": []},
        {
            "id": None,
            "success": False,
            "errors": [
                {
                    "statusCode": "MISSING_ARGUMENT",
                    "message": "Id not specified in an update call",
                    "fields": [],
                }
            ],
        },
        {"id": ids[1], "success": True, "errors": []},
    ]
    assert stored(emu) == ["A", "Bee"]
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ids[0], "allOrNone": "false"})
    assert deleted == [{"id": ids[0], "success": True, "errors": []}]
    again = sf.restful(
        "composite/sobjects", method="DELETE", params={"ids": f"{ids[0]},{ids[1]}", "allOrNone": "true"}
    )
    assert again == [
        {
            "id": ids[0],
            "success": False,
            "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}],
        },
        {"id": ids[1], "success": False, "errors": [ROLLED_BACK]},
    ]
    assert stored(emu) == ["Bee"]
    assert calls(emu)["collections"] == 4


def test_more_than_200_records_is_refused(emu, raw):
    response = raw("POST", "composite/sobjects", json={"records": [lead(str(i)) for i in range(201)]})
    assert (response.status_code, response.json()) == (
        400,
        [
            {
                "message": "record limit reached. cannot submit more than 200 records into this call",
                "errorCode": "EXCEEDED_ID_LIMIT",
            }
        ],
    )
    updates = [{"attributes": {"type": "Lead"}, "id": "00Q8c0000000001EAA", "Title": "x"}] * 201
    assert raw("PATCH", "composite/sobjects", json={"records": updates}).json()[0]["errorCode"] == (
        "EXCEEDED_ID_LIMIT"
    )
    ids = ",".join(["00Q8c0000000001EAA"] * 201)
    assert (
        raw("DELETE", "composite/sobjects", params={"ids": ids}).json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    )
    assert stored(emu) == []


TOO_MANY_CHUNKS = [
    {
        "message": "Cannot have more than 10 chunks in a single operation. "
        "Please rearrange the data to reduce chunking.",
        "errorCode": "EXCEEDED_MAX_TYPES_LIMIT",
    }
]


def account(name: str) -> dict:
    return {"attributes": {"type": "Account"}, "Name": name}


def chunked(chunks: int) -> list[dict]:
    """Records in `chunks` runs of alternating types: two Leads (type names cased differently), an Account."""
    runs = [[lead(f"L{i}a"), {**lead(f"L{i}b"), "attributes": {"type": "LEAD"}}] for i in range(0, chunks, 2)]
    accounts = [[account(f"A{i}")] for i in range(1, chunks, 2)]
    return [r for pair in zip(runs, accounts + [[]], strict=False) for run in pair for r in run]


def test_ten_chunks_in_one_call(emu, sf):
    records = chunked(10)
    assert [r["attributes"]["type"].title() for r in records][:4] == ["Lead", "Lead", "Account", "Lead"]
    results = sf.restful("composite/sobjects", method="POST", json={"records": records})
    assert [r["success"] for r in results] == [True] * 15
    assert len(stored(emu)) == 10


def test_an_eleventh_chunk_fails_the_whole_request(emu, raw):
    response = raw("POST", "composite/sobjects", json={"records": chunked(11)})
    assert (response.status_code, response.json()) == (400, TOO_MANY_CHUNKS)
    assert stored(emu) == [] and emu.admin("GET", "records/Account")["totalSize"] == 0
    assert calls(emu) == {"login": 1, "collections": 1}


def test_update_chunks_go_by_type_or_id_prefix(emu, raw):
    lead_ids = emu.admin("POST", "records/Lead", [{"LastName": f"L{i}", "Company": "C"} for i in range(6)])[
        "ids"
    ]
    account_ids = emu.admin("POST", "records/Account", [{"Name": f"A{i}"} for i in range(5)])["ids"]
    # Without attributes.type a record's id names its object: L A L A ... L is 11 chunks.
    alternating = [lead_ids[0]] + [i for pair in zip(account_ids, lead_ids[1:], strict=True) for i in pair]
    updates = [{"id": record_id, "Description": "x"} for record_id in alternating]
    response = raw("PATCH", "composite/sobjects", json={"records": updates})
    assert (response.status_code, response.json()) == (400, TOO_MANY_CHUNKS)
    ten = raw("PATCH", "composite/sobjects", json={"records": updates[:10]})
    assert (ten.status_code, [r["success"] for r in ten.json()]) == (200, [True] * 10)


def test_200_records_in_one_call(emu, sf):
    results = sf.restful(
        "composite/sobjects", method="POST", json={"records": [lead(f"{i:03d}") for i in range(200)]}
    )
    assert all(r["success"] for r in results) and len(results) == 200
    assert calls(emu) == {"login": 1, "collections": 1}


def test_composite_with_references(emu, sf):
    body = {
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"/services/data/v{API}/sobjects/Account",
                "referenceId": "acct",
                "body": {"Name": "Acme"},
            },
            {
                "method": "POST",
                "url": f"/services/data/v{API}/sobjects/Contact",
                "referenceId": "ct",
                "body": {"LastName": "Smith", "AccountId": "@{acct.id}"},
            },
            {
                "method": "GET",
                "url": f"/services/data/v{API}/sobjects/Contact/@{{ct.id}}?fields=AccountId",
                "referenceId": "get",
            },
            {
                "method": "GET",
                "url": f"/services/data/v{API}/query?q=SELECT+Id+FROM+Account",
                "referenceId": "q",
            },
        ]
    }
    out = sf.restful("composite", method="POST", json=body)["compositeResponse"]
    assert [(r["referenceId"], r["httpStatusCode"]) for r in out] == [
        ("acct", 201),
        ("ct", 201),
        ("get", 200),
        ("q", 200),
    ]
    account_id = out[0]["body"]["id"]
    assert out[0]["httpHeaders"] == {"Location": f"/services/data/v{API}/sobjects/Account/{account_id}"}
    assert out[2]["body"]["AccountId"] == account_id
    assert out[3]["body"]["records"][0]["Id"] == account_id
    assert calls(emu) == {"login": 1, "composite": 1}


def test_composite_all_or_none_halts_and_rolls_back(emu, sf):
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"/services/data/v{API}/sobjects/Lead",
                "referenceId": "a",
                "body": {"LastName": "A", "Company": "C"},
            },
            {
                "method": "POST",
                "url": f"/services/data/v{API}/sobjects/Lead",
                "referenceId": "b",
                "body": {"LastName": "B"},
            },
            {
                "method": "POST",
                "url": f"/services/data/v{API}/sobjects/Lead",
                "referenceId": "c",
                "body": {"LastName": "C", "Company": "C"},
            },
        ],
    }
    out = sf.restful("composite", method="POST", json=body)["compositeResponse"]
    assert out[0] == {"body": HALTED, "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "a"}
    assert (out[1]["httpStatusCode"], out[1]["body"][0]["errorCode"]) == (400, "REQUIRED_FIELD_MISSING")
    assert out[2] == {"body": HALTED, "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "c"}
    assert stored(emu) == []


def test_composite_without_all_or_none_keeps_the_good_ones(emu, sf):
    body = {
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"/services/data/v{API}/sobjects/Lead",
                "referenceId": "bad",
                "body": {"LastName": "B"},
            },
            {
                "method": "PATCH",
                "url": f"/services/data/v{API}/sobjects/Lead/@{{bad.id}}",
                "referenceId": "dep",
                "body": {},
            },
            {
                "method": "POST",
                "url": f"/services/data/v{API}/sobjects/Lead",
                "referenceId": "ok",
                "body": {"LastName": "A", "Company": "C"},
            },
        ]
    }
    out = sf.restful("composite", method="POST", json=body)["compositeResponse"]
    assert [r["httpStatusCode"] for r in out] == [400, 400, 201]
    assert out[1]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert stored(emu) == ["A"]


def query_sub(ref: str, resource: str = "query") -> dict:
    return {
        "method": "GET",
        "url": f"/services/data/v{API}/{resource}/?q=SELECT+Id+FROM+Lead",
        "referenceId": ref,
    }


def test_composite_with_five_queries(emu, sf):
    create = {
        "method": "POST",
        "url": f"/services/data/v{API}/sobjects/Lead",
        "referenceId": "new",
        "body": {"LastName": "A", "Company": "C"},
    }
    subrequests = [create, *(query_sub(f"q{i}") for i in range(4)), query_sub("all", "queryAll")]
    out = sf.restful("composite", method="POST", json={"compositeRequest": subrequests})["compositeResponse"]
    assert [(r["referenceId"], r["httpStatusCode"], r["body"].get("totalSize")) for r in out] == [
        ("new", 201, None),
        *((f"q{i}", 200, 1) for i in range(4)),
        ("all", 200, 1),
    ]


def test_composite_over_5_queries_runs_nothing(emu, sf):
    create = {
        "method": "POST",
        "url": f"/services/data/v{API}/sobjects/Lead",
        "referenceId": "new",
        "body": {"LastName": "A", "Company": "C"},
    }
    subrequests = [create, *(query_sub(f"q{i}") for i in range(5)), query_sub("all", "queryAll")]
    out = sf.restful("composite", method="POST", json={"compositeRequest": subrequests})
    assert out == {
        "compositeResponse": [
            {
                "body": [
                    {
                        "errorCode": "LIMIT_EXCEEDED",
                        "message": "The request can’t contain more than 5 query operations.",
                    }
                ],
                "httpHeaders": {},
                "httpStatusCode": 400,
                "referenceId": None,
            }
        ]
    }
    assert stored(emu) == []
    assert calls(emu) == {"login": 1, "composite": 1}


def test_composite_over_25_subrequests(emu, sf):
    sub = {"method": "GET", "url": f"/services/data/v{API}/limits", "referenceId": "x"}
    out = sf.restful("composite", method="POST", json={"compositeRequest": [sub] * 26})
    assert out == {
        "compositeResponse": [
            {
                "body": [
                    {
                        "errorCode": "LIMIT_EXCEEDED",
                        "message": "The request can’t contain more than 25 operations.",
                    }
                ],
                "httpHeaders": {},
                "httpStatusCode": 400,
                "referenceId": None,
            }
        ]
    }


# --- sObject Collections inside Composite ---------------------------------------------------------

COLLECTIONS = f"/services/data/v{API}/composite/sobjects"


def sub(method: str, url: str, ref: str, body: object = None) -> dict:
    out = {"method": method, "url": url, "referenceId": ref}
    if body is not None:
        out["body"] = body
    return out


def composite(sf, subrequests: list[dict], all_or_none: bool = False) -> list[dict]:
    body = {"allOrNone": all_or_none, "compositeRequest": subrequests}
    return sf.restful("composite", method="POST", json=body)["compositeResponse"]


def made(results: list[dict]) -> list[dict]:
    """Results with each created id replaced by its key prefix, so that tables can name them."""
    return [{**r, "id": r["id"][:3]} if r["id"] else r for r in results]


CREATED_A = {"id": "00Q", "success": True, "errors": []}
FAILED_B = {"id": None, "success": False, "errors": [MISSING_COMPANY]}
ROLLED_BACK_A = {"id": None, "success": False, "errors": [ROLLED_BACK]}


@pytest.mark.parametrize(
    ("outer", "inner", "collection", "contact_status", "leads", "contacts"),
    [
        # The four cases of "allOrNone Parameters in Composite and Collections Requests".
        (False, False, [CREATED_A, FAILED_B], 201, ["A"], ["Smith"]),
        (False, True, [ROLLED_BACK_A, FAILED_B], 201, [], ["Smith"]),
        (True, True, [ROLLED_BACK_A, FAILED_B], 400, [], []),
        (True, False, [ROLLED_BACK_A, FAILED_B], 400, [], []),  # the outer flag overrides the inner one
    ],
)
def test_all_or_none_of_composite_and_collections(
    emu, sf, outer, inner, collection, contact_status, leads, contacts
):
    out = composite(
        sf,
        [
            sub(
                "POST", COLLECTIONS, "newLeads", {"allOrNone": inner, "records": [lead("A"), lead("B", None)]}
            ),
            sub("POST", f"/services/data/v{API}/sobjects/Contact", "newContact", {"LastName": "Smith"}),
        ],
        all_or_none=outer,
    )
    assert (out[0]["referenceId"], out[0]["httpStatusCode"], out[0]["httpHeaders"]) == ("newLeads", 200, {})
    assert made(out[0]["body"]) == collection
    assert (out[1]["referenceId"], out[1]["httpStatusCode"]) == ("newContact", contact_status)
    if contact_status == 400:
        assert out[1]["body"] == HALTED
    assert (stored(emu), stored(emu, "Contact")) == (leads, contacts)
    assert calls(emu) == {"login": 1, "composite": 1}


def test_collections_subrequests_create_update_delete_with_references(emu, sf):
    out = composite(
        sf,
        [
            sub("POST", COLLECTIONS, "created", {"records": [lead("A"), lead("B")]}),
            sub(
                "PATCH",
                COLLECTIONS,
                "updated",
                {
                    "records": [
                        {"attributes": {"type": "Lead"}, "id": "@{created[0].id}", "LastName": "A2"},
                        {"attributes": {"type": "Lead"}, "id": "@{created[1].id}", "Company": ""},
                    ]
                },
            ),
            sub("DELETE", f"{COLLECTIONS}?ids=@{{created[1].id}}&allOrNone=true", "deleted"),
            sub("GET", f"/services/data/v{API}/query?q=SELECT+LastName+FROM+Lead", "left"),
        ],
        all_or_none=False,
    )
    first, second = (r["id"] for r in out[0]["body"])
    assert [(r["referenceId"], r["httpStatusCode"]) for r in out] == [
        ("created", 200),
        ("updated", 200),
        ("deleted", 200),
        ("left", 200),
    ]
    assert out[1]["body"] == [
        {"id": first, "success": True, "errors": []},
        {"id": None, "success": False, "errors": [MISSING_COMPANY]},
    ]
    assert out[2]["body"] == [{"id": second, "success": True, "errors": []}]
    assert [r["LastName"] for r in out[3]["body"]["records"]] == ["A2"]
    assert stored(emu) == ["A2"]
    assert calls(emu) == {"login": 1, "composite": 1}


def test_collections_upsert_subrequest(emu, sf):
    records = [
        {"attributes": {"type": "Lead"}, "Ext__c": "k1", "LastName": "One", "Company": "Co"},
        {"attributes": {"type": "Lead"}, "Ext__c": "k2", "LastName": "Two"},
    ]
    out = composite(sf, [sub("PATCH", f"{COLLECTIONS}/Lead/Ext__c", "up", {"records": records})])
    assert out[0]["httpStatusCode"] == 200
    assert made(out[0]["body"]) == [
        {"id": "00Q", "success": True, "errors": [], "created": True},
        {"id": None, "success": False, "errors": [MISSING_COMPANY], "created": False},
    ]


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "error"),
    [
        ("POST", COLLECTIONS, {"records": "nope"}, 400, "JSON_PARSER_ERROR"),
        ("POST", COLLECTIONS, {"records": [lead(str(i)) for i in range(201)]}, 400, "EXCEEDED_ID_LIMIT"),
        ("DELETE", COLLECTIONS, None, 400, "MISSING_ARGUMENT"),
        ("GET", COLLECTIONS, None, 405, "METHOD_NOT_ALLOWED"),
        ("PATCH", f"{COLLECTIONS}/Lead/LastName", {"records": []}, 404, "NOT_FOUND"),
        ("POST", "/services/data/v41.0/composite/sobjects", {"records": []}, 404, "NOT_FOUND"),
        ("POST", "/services/data/v29.0/composite/sobjects", {"records": []}, 410, "GONE"),
    ],
)
def test_refused_collections_subrequests(emu, sf, method, url, body, status, error):
    out = composite(sf, [sub(method, url, "bad", body)])
    assert (out[0]["httpStatusCode"], out[0]["body"][0]["errorCode"]) == (status, error)
    assert stored(emu) == []
