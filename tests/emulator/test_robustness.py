"""Bad requests get Salesforce-shaped errors and the server keeps serving."""

import asyncio
import json
from types import SimpleNamespace

import pytest

from emulator.app import MAX_BODY_BYTES, Gate
from emulator.responses import json_bytes
from tests.emulator.conftest import API

NOT_FOUND = [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
SOAP_URL = f"/services/Soap/u/{API}"


@pytest.fixture(autouse=True)
def still_serving(emu, raw):
    yield
    assert emu.admin("GET", "health") == {"status": "ok"}
    assert raw("GET", "limits").status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Expecting property name enclosed in double quotes at [line:1, column:2]"),
        (b'{"LastName": "x",', "Expecting property name enclosed in double quotes at [line:1, column:18]"),
        (b"", "No content to map due to end-of-input at [line:1, column:0]"),
        (b"\xff\xfe{}", "Invalid UTF-8 start byte at [line:1, column:1]"),
        (b"[1, 2]", "Cannot deserialize SObject out of START_ARRAY token at [line:1, column:1]"),
        (b"[" * 100_000 + b"]" * 100_000, "Maximum nesting depth exceeded at [line:1, column:1]"),
    ],
)
def test_malformed_json_is_json_parser_error(raw, body, message):
    response = raw("POST", "sobjects/Lead", data=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (
        400,
        [{"message": message, "errorCode": "JSON_PARSER_ERROR"}],
    )


@pytest.mark.parametrize("path", ["composite/sobjects", "composite"])
def test_malformed_composite_bodies(raw, path):
    for body in (b"[]", b'{"records": 5}', b'{"compositeRequest": [1]}', b"nope"):
        response = raw("POST", path, data=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_oversized_body_is_413(raw):
    body = b"x" * (MAX_BODY_BYTES + 1)
    response = raw("POST", "sobjects/Lead", data=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (
        413,
        [
            {
                "message": f"The size of the request body exceeded the max size of {MAX_BODY_BYTES} bytes",
                "errorCode": "EXCEEDED_MAX_SIZE_REQUEST",
            }
        ],
    )


def test_oversized_chunked_body_is_413(raw):
    def chunks():
        for _ in range(MAX_BODY_BYTES // (1 << 20) + 1):
            yield b"y" * (1 << 20)

    response = raw("POST", "sobjects/Lead", data=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        (b"<not xml", "<faultcode>soapenv:Client</faultcode>"),
        (b"", "<faultcode>soapenv:Client</faultcode>"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>',
            "<faultstring>DOCTYPE is not allowed in a SOAP request</faultstring>",
        ),
        (
            b'<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>'
            b'<logout xmlns="urn:partner.soap.sforce.com"/></env:Body></env:Envelope>',
            "No operation available for request {urn:partner.soap.sforce.com}logout",
        ),
    ],
)
def test_malformed_soap_is_a_client_fault(raw, body, fault):
    response = raw(
        "POST", SOAP_URL, auth=False, absolute=True, data=body, headers={"Content-Type": "text/xml"}
    )
    assert response.status_code == 500
    assert fault in response.text


def test_oauth_with_garbage(raw):
    response = raw(
        "POST",
        "/services/oauth2/token",
        auth=False,
        absolute=True,
        data=b"\xff\xfe=\x00",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic %%%"},
    )
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_request", "invalid_client", "unsupported_grant_type")


@pytest.mark.parametrize(
    "path", ["/nothing", "/services", "/services/data/v59.0/sobjects/Lead/a/b/c/d", "/_emulator"]
)
def test_unknown_paths_are_404(raw, path):
    response = raw("GET", path, absolute=True)
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/services/data/v59.0/limits", "HEAD,GET"),
        ("GET", "/services/oauth2/token", "POST"),
        ("PUT", "/services/data/v59.0/composite/sobjects", "POST,PATCH,DELETE"),
    ],
)
def test_wrong_methods_are_405(raw, method, path, allowed):
    response = raw(method, path, absolute=True)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json() == [
        {
            "message": f"HTTP Method '{method}' not allowed. Allowed are {allowed}",
            "errorCode": "METHOD_NOT_ALLOWED",
        }
    ]


def test_bad_ids_and_field_lists(raw):
    assert raw("GET", "sobjects/Lead/!!!").status_code == 404
    response = raw("GET", "sobjects/Lead/00Q8c0000000001EAA", params={"fields": "Nope"})
    assert (response.status_code, response.json()[0]["errorCode"]) == (400, "INVALID_FIELD")
    assert raw("DELETE", "sobjects/Lead/xyz").json()[0]["errorCode"] == "MALFORMED_ID"


# JSON text with a lone high and a lone low surrogate, then a valid pair (an emoji): valid JSON, but
# UTF-8 cannot hold a lone surrogate, so Salesforce's storage (and every response) cannot either.
SURROGATES = b'"A\\ud800 \\uDFFF \\ud83d\\ude00"'
STORED = "A\ufffd \ufffd \U0001f600"
LEAD = b'"LastName": ' + SURROGATES + b', "Company": "C"'


@pytest.mark.parametrize(
    "path, body",
    [
        ("sobjects/Lead", b"{" + LEAD + b"}"),
        (
            "composite/sobjects",
            b'{"allOrNone": true, "records": [{"attributes": {"type": "Lead"}, ' + LEAD + b"}]}",
        ),
        ("/_emulator/records/Lead", b"{" + LEAD + b"}"),
    ],
)
def test_lone_surrogates_are_stored_as_replacement_characters(emu, raw, path, body):
    absolute = path.startswith("/")
    response = raw("POST", path, data=body, absolute=absolute, headers={"Content-Type": "application/json"})
    assert response.status_code in (200, 201), response.text
    listed = emu.admin("GET", "records/Lead")
    assert [r["LastName"] for r in listed["records"]] == [STORED]
    lead = raw("GET", f"sobjects/Lead/{listed['records'][0]['Id']}")
    assert (lead.status_code, lead.json()["LastName"]) == (200, STORED)
    found = raw("GET", "query", params={"q": "SELECT LastName FROM Lead"})
    assert [r["LastName"] for r in found.json()["records"]] == [STORED]


def test_an_update_with_a_lone_surrogate_is_stored_as_a_replacement_character(emu, raw):
    lead_id = emu.admin("POST", "records/Lead", {"LastName": "A", "Company": "C"})["id"]
    body = b'{"Company": ' + SURROGATES + b"}"
    response = raw(
        "PATCH", f"sobjects/Lead/{lead_id}", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 204
    assert [r["Company"] for r in emu.admin("GET", "records/Lead")["records"]] == [STORED]


@pytest.mark.parametrize(
    "content, body",
    [
        (["A\ud800", {"\udfff": "\U0001f600"}], '["A\ufffd",{"\ufffd":"\U0001f600"}]'),
        ({"LastName": "Jürgen"}, '{"LastName":"Jürgen"}'),
    ],
)
def test_responses_hold_no_lone_surrogates(content, body):
    # A record stored before surrogates were replaced on the way in is still listed.
    assert json_bytes(content) == body.encode("utf-8")


@pytest.mark.parametrize("authorization", ["Bearer a b c", "Bearer", "OAuth", "x" * 5000])
def test_odd_authorization_headers_are_401(raw, authorization):
    response = raw("GET", "limits", headers={"Authorization": authorization})
    assert (response.status_code, response.json()[0]["errorCode"]) == (401, "INVALID_SESSION_ID")


def test_a_failing_handler_becomes_unknown_exception(caplog):
    # The gate is the last resort: a handler bug is logged and answered in Salesforce's shape.
    async def boom(scope, receive, send):
        raise RuntimeError("handler bug")

    class App:
        state = SimpleNamespace(max_body_bytes=1024)

    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/boom", "headers": [], "app": App()}
    asyncio.run(Gate(boom)(scope, receive, send))
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"]) == [
        {"message": "An unexpected error occurred. Please contact support.", "errorCode": "UNKNOWN_EXCEPTION"}
    ]
    assert "unhandled error in GET /boom" in caplog.text
    assert "RuntimeError: handler bug" in caplog.text


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        # More digits than Python's int() reads (4,300): a ValueError, and a 500, before.
        ("NumberOfEmployees", "9" * 5000, "NUMBER_OUTSIDE_VALID_RANGE"),
        ("NumberOfEmployees", '"' + "9" * 5000 + '"', "NUMBER_OUTSIDE_VALID_RANGE"),
        ("AnnualRevenue", "9" * 5000, "NUMBER_OUTSIDE_VALID_RANGE"),
        ("AnnualRevenue", '"1e30"', "NUMBER_OUTSIDE_VALID_RANGE"),
        ("Title", "9" * 5000, "STRING_TOO_LONG"),
        ("HasOptedOutOfEmail", "9" * 5000, "JSON_PARSER_ERROR"),
    ],
)
def test_numbers_of_many_digits_are_refused_with_a_reason(raw, field, value, code):
    body = f'{{"LastName": "Huge", "Company": "Digits", "{field}": {value}}}'.encode()
    response = raw("POST", "sobjects/Lead", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text[:300]
    assert [e["errorCode"] for e in response.json()] == [code]


PARSE_ERROR = {
    "statusCode": "JSON_PARSER_ERROR",
    "message": "attributes.type must be the name of an object",
    "fields": [],
}


def _create_typed(raw, type_):
    body = {"allOrNone": False, "records": [{"attributes": {"type": type_}, "LastName": "x"}]}
    response = raw("POST", "composite/sobjects", json=body)
    assert response.status_code == 200, response.text[:300]
    return response.json()


def test_a_record_whose_type_is_a_number_is_of_the_object_so_named(raw):
    # Read as text, as Salesforce's JSON reader does; before, it crashed the handler (a 500).
    assert _create_typed(raw, 5) == _create_typed(raw, "5")


@pytest.mark.parametrize("type_", [True, {"a": 1}, [1]])
def test_a_record_whose_type_is_no_name_fails_alone(raw, type_):
    assert _create_typed(raw, type_) == [{"id": None, "success": False, "errors": [PARSE_ERROR]}]
