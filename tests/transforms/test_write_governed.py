"""WriteToSalesforce under the API budget governor: reserved calls become retryable dead letters."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from salesforce.errors import ApiUsageReserved
from tests.transforms import fake_salesforce
from tests.transforms.conftest import run_and_count
from tests.transforms.test_write_to_salesforce import (
    CREDENTIALS,
    EXISTING,
    SETTINGS,
    UPDATED_OLD,
    _dead_letter_summary,
    _lead,
)
from transforms.write_to_salesforce import WriteToSalesforce

MESSAGE = "the org has used 95001 of its 100000 daily API calls (95.0%), which reaches the 90% ..."
RESERVED = ApiUsageReserved(MESSAGE)
RESERVED_DL = ("API_USAGE_RESERVED", True, MESSAGE)


class ReservedDescribeClient(fake_salesforce.FakeClient):
    """The governor refuses the describe: the usage read on an earlier call was over the limit."""

    def describe(self, sobject):
        raise ApiUsageReserved(MESSAGE)


class ThrottledClient(fake_salesforce.FakeClient):
    """A client that waited 2.5 s for the call rate limit while logging in."""

    def login(self) -> None:
        super().login()
        self.throttled_seconds = 2.5


def _write(p, batches, client_factory=fake_salesforce.FakeClient):
    return (
        p
        | "Batches" >> beam.Create(batches)
        | "Write" >> WriteToSalesforce(CREDENTIALS, SETTINGS, client_factory=client_factory)
    )


def _check_dead_letters(result, dead_letters):
    assert_that(
        result.dead_letter | "Summarize" >> beam.Map(_dead_letter_summary),
        equal_to(
            [
                ("write", reason, retryable, m, f"in/{m}.jsonl", message)
                for m, (reason, retryable, message) in dead_letters.items()
            ]
        ),
        label="CheckDeadLetters",
    )


# m1 is an update of old@example.com, m2 a create of new@example.com.
@pytest.mark.parametrize(
    "raise_on, written, dead_letters",
    [
        ({"query_all": RESERVED}, [], {"m1": RESERVED_DL, "m2": RESERVED_DL}),
        ({"update_many": RESERVED}, [], {"m1": RESERVED_DL, "m2": RESERVED_DL}),
        # The update went out before the usage reached the limit: it stays written.
        ({"create_many": RESERVED}, [UPDATED_OLD], {"m2": RESERVED_DL}),
    ],
    ids=["reserved_on_lookup", "reserved_on_update", "reserved_on_create"],
)
def test_reserved_calls_dead_letter_per_record_and_retryable(p, raise_on, written, dead_letters):
    fake_salesforce.reset({"Lead": EXISTING}, raise_on=raise_on)
    batch = [_lead("old@example.com", {"FirstName": "Bill"}, "m1"), _lead("new@example.com", {}, "m2")]
    result = _write(p, [batch])

    assert_that(result.output, equal_to(written), label="CheckWritten")
    _check_dead_letters(result, dead_letters)
    run_and_count(p)
    assert [r["Id"] for r in fake_salesforce.STATE["records"]["Lead"]] == ["00Q1", "00Q2"]


def test_a_reserved_describe_dead_letters_the_whole_batch(p):
    fake_salesforce.reset({})
    batches = [[_lead("a@example.com", {}, "m1", "m2")], [_lead("b@example.com", {}, "m3")]]
    result = _write(p, batches, client_factory=ReservedDescribeClient)

    assert_that(result.output, equal_to([]), label="CheckNothingWritten")
    _check_dead_letters(result, {m: RESERVED_DL for m in ("m1", "m2", "m3")})
    run_and_count(p)
    assert fake_salesforce.STATE["records"] == {}


def test_time_waited_for_the_rate_limit_is_counted_in_whole_seconds(p):
    fake_salesforce.reset({})
    result = _write(p, [[_lead("a@example.com", {}, "m1")]], client_factory=ThrottledClient)

    assert_that(result.dead_letter, equal_to([]), label="CheckNoDeadLetters")
    counts = run_and_count(p)
    assert counts["throttled_seconds"] == 2
    assert counts["records_written:Lead:create"] == 1
