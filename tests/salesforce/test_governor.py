"""The API budget governor as tables: usage readings to allow or refuse, the token bucket's waits."""

import pytest

from salesforce.errors import ApiLimitExceeded, ApiUsageReserved
from salesforce.governor import (
    STALE_READING_SECONDS,
    ApiUsage,
    TokenBucket,
    UsageGovernor,
    parse_limit_info,
    usage_reached,
)
from tests.salesforce.conftest import FakeClock


@pytest.mark.parametrize(
    "header, usage",
    [
        (None, None),
        ("", None),
        ("api-usage=10018/100000", ApiUsage(10018, 100000)),
        ("api-usage=10018/100000; api-bursts=1/750", ApiUsage(10018, 100000)),
        ("api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)", ApiUsage(25, 5000)),
        (" api-usage=7/15000", ApiUsage(7, 15000)),
        ("per-app-api-usage=17/250(appName=sample-connected-app)", None),
        ("api-usage=lots", None),
    ],
)
def test_parse_limit_info(header, usage):
    assert parse_limit_info(header) == usage


@pytest.mark.parametrize(
    "used, max_, limit_percent, reached",
    [
        (89_999, 100_000, 90, False),
        (90_000, 100_000, 90, True),  # "reaches": the limit itself is already too much
        (95_001, 100_000, 90, True),
        (0, 100_000, 0.5, False),
        (499, 100_000, 0.5, False),
        (500, 100_000, 0.5, True),
        (1, 3, 33.4, False),
        (1, 3, 33.3, True),
        (0, 0, 90, True),  # no allocation at all
        (15_000, 15_000, 100, True),
    ],
)
def test_usage_reached(used, max_, limit_percent, reached):
    assert usage_reached(ApiUsage(used, max_), limit_percent) is reached


def _check(governor: UsageGovernor) -> str:
    try:
        governor.check()
    except ApiUsageReserved:
        return "refuse"
    return "allow"


@pytest.mark.parametrize(
    "limit_percent, readings, decision",
    [
        (90, [], "allow"),  # before the first response: nothing to go on
        (90, [None], "allow"),  # a SOAP login answer carries no header
        (90, [ApiUsage(10_000, 100_000)], "allow"),
        (90, [ApiUsage(89_999, 100_000)], "allow"),
        (90, [ApiUsage(90_000, 100_000)], "refuse"),
        (90, [ApiUsage(95_001, 100_000)], "refuse"),
        (90, [ApiUsage(95_001, 100_000), None], "refuse"),  # a response without a header keeps it
        (90, [ApiUsage(95_001, 100_000), ApiUsage(80_000, 100_000)], "allow"),  # the last one counts
        (90, [ApiUsage(10_000, 100_000), ApiUsage(90_000, 100_000)], "refuse"),
        (100, [ApiUsage(100_000, 100_000)], "allow"),  # 100 is off: the org refuses by itself
        (100, [ApiUsage(99_999, 100_000)], "allow"),
    ],
)
def test_governor_decisions(limit_percent, readings, decision):
    governor = UsageGovernor(limit_percent, FakeClock())
    for reading in readings:
        governor.record(reading)
    assert _check(governor) == decision


def test_refusal_names_the_usage_the_limit_and_the_option():
    governor = UsageGovernor(90, FakeClock())
    governor.record(ApiUsage(95_001, 100_000))
    with pytest.raises(ApiLimitExceeded) as raised:
        governor.check()
    assert isinstance(raised.value, ApiUsageReserved)
    assert raised.value.error_code == "API_USAGE_RESERVED"
    assert raised.value.message == (
        "the org has used 95001 of its 100000 daily API calls (95.0%), which reaches the 90% this "
        "pipeline may use (--api_usage_limit_percent 90); the rest is left for the org's other "
        "integrations. Replay these events later, or raise --api_usage_limit_percent"
    )
    assert str(raised.value) == "API_USAGE_RESERVED: " + raised.value.message


def test_a_stale_reading_lets_one_call_through_to_read_again():
    clock = FakeClock()
    governor = UsageGovernor(90, clock)
    governor.record(ApiUsage(95_001, 100_000))
    decisions = []
    for advance in (0, STALE_READING_SECONDS - 1, 1, 0, STALE_READING_SECONDS):
        clock.now += advance
        decisions.append(_check(governor))
    assert decisions == ["refuse", "refuse", "allow", "refuse", "allow"]
    # The call let through answers with a fresh reading, which decides from then on.
    governor.record(ApiUsage(70_000, 100_000))
    assert _check(governor) == "allow"


@pytest.mark.parametrize("limit_percent", [0, -1, 100.5, float("nan")])
def test_governor_rejects_a_share_out_of_range(limit_percent):
    with pytest.raises(ValueError, match="more than 0 and at most 100"):
        UsageGovernor(limit_percent, FakeClock())


@pytest.mark.parametrize(
    "rate, offsets, waits",
    [
        (4.0, [0, 0.25, 0.5, 0.75], [0, 0, 0, 0]),  # calls already spaced 1/rate apart
        (4.0, [0, 0, 0], [0, 0.25, 0.5]),  # calls at once queue up, 1/rate apart
        (4.0, [0, 0.125], [0, 0.125]),  # a call early by an eighth of a second waits for it
        (4.0, [0, 10, 10], [0, 0, 0.25]),  # idle time banks one call, never a burst
        (0.5, [0, 0, 4], [0, 2.0, 0]),  # below one call a second
        (1000.0, [0, 0], [0, 0.001]),
    ],
)
def test_token_bucket_waits(rate, offsets, waits):
    clock = FakeClock()
    start = clock.now
    bucket = TokenBucket(rate, clock)
    got = []
    for offset in offsets:
        clock.now = start + offset
        got.append(bucket.reserve())
    assert got == waits


def test_token_bucket_with_a_caller_that_sleeps_the_wait():
    clock = FakeClock()
    bucket = TokenBucket(2.0, clock)
    slept = []
    for _ in range(4):
        wait = bucket.reserve()
        slept.append(wait)
        clock.now += wait
    assert slept == [0, 0.5, 0.5, 0.5]


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
def test_token_bucket_rejects_a_rate_that_is_not_one(rate):
    with pytest.raises(ValueError, match="positive number of calls a second"):
        TokenBucket(rate, FakeClock())
