"""The API budget governor: a share of the org's daily API allocation, and a per-client call rate."""

import math
from collections.abc import Callable
from dataclasses import dataclass

from simple_salesforce import Salesforce

from salesforce.errors import ApiUsageReserved

LIMIT_OPTION = "--api_usage_limit_percent"
RATE_OPTION = "--max_calls_per_second"
# 100% is what the org enforces itself (REQUEST_LIMIT_EXCEEDED): the governor then stays out of the way,
# so that the default behaves exactly as before the governor existed.
NO_LIMIT_PERCENT = 100.0
# Usage falls as the rolling 24 hours move on, but a client that makes no call gets no new reading;
# once its reading is this old, one call may go through to take a fresh one (a long streaming writer
# would otherwise refuse forever).
STALE_READING_SECONDS = 300.0


@dataclass(frozen=True)
class ApiUsage:
    """The org's API calls over the rolling 24 hours (`used`) and its allocation (`max`)."""

    used: int
    max: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.max if self.max > 0 else 100.0


def parse_limit_info(value: str | None) -> ApiUsage | None:
    """The usage a `Sforce-Limit-Info` header reports ("api-usage=N/M", maybe followed by more), or None."""
    if not value:
        return None
    # simple-salesforce's own parser (salesforce-api.md §2.3), so that both read the header alike.
    usage = Salesforce.parse_api_usage(value).get("api-usage")
    if usage is None:
        return None
    return ApiUsage(int(usage.used), int(usage.total))


def usage_reached(usage: ApiUsage, limit_percent: float) -> bool:
    """True once `usage` is at or over `limit_percent` of the allocation (compared without division)."""
    return usage.used * 100 >= limit_percent * usage.max


def reserved_message(usage: ApiUsage, limit_percent: float) -> str:
    return (
        f"the org has used {usage.used} of its {usage.max} daily API calls ({usage.percent:.1f}%), which "
        f"reaches the {limit_percent:g}% this pipeline may use ({LIMIT_OPTION} {limit_percent:g}); the rest "
        f"is left for the org's other integrations. Replay these events later, or raise {LIMIT_OPTION}"
    )


class UsageGovernor:
    """Remembers the last usage reading and refuses calls once it reaches `limit_percent`.

    Not thread-safe on its own: the client calls it under its lock. Pure otherwise (no I/O).
    """

    def __init__(
        self,
        limit_percent: float,
        clock: Callable[[], float],
        stale_after_seconds: float = STALE_READING_SECONDS,
    ) -> None:
        if not 0 < limit_percent <= NO_LIMIT_PERCENT:
            raise ValueError(f"limit_percent must be more than 0 and at most 100, not {limit_percent!r}")
        self.limit_percent = limit_percent
        self._clock = clock
        self._stale_after = stale_after_seconds
        self.reading: ApiUsage | None = None
        self._read_at = 0.0

    @property
    def enabled(self) -> bool:
        return self.limit_percent < NO_LIMIT_PERCENT

    def record(self, usage: ApiUsage | None) -> None:
        """Takes a response's reading; responses without one (SOAP login) leave the last reading."""
        if usage is not None:
            self.reading = usage
            self._read_at = self._clock()

    def check(self) -> None:
        """Raises ApiUsageReserved when the next call must not be made."""
        reading = self.reading
        # Before the first response there is nothing to go on; that first call gives the reading.
        if not self.enabled or reading is None or not usage_reached(reading, self.limit_percent):
            return
        now = self._clock()
        if now - self._read_at >= self._stale_after:
            # Let this one call through to read the usage again; the next ones wait for its answer.
            self._read_at = now
            return
        raise ApiUsageReserved(reserved_message(reading, self.limit_percent))


class TokenBucket:
    """At most `rate` calls a second: a bucket of one token, refilled at `rate` tokens a second.

    `reserve()` takes a token and says how long to wait before using it; waits queue up (the bucket
    goes below zero), so callers on several threads are spaced out too. No bursts: a bucket larger
    than one token would let a writer that was idle send a burst at twice the rate.
    """

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of calls a second, not {rate!r}")
        self.rate = rate
        self._clock = clock
        self._tokens = 1.0
        self._at: float | None = None

    def reserve(self) -> float:
        """Seconds to wait before the call this token is for (0.0 when it may go now)."""
        now = self._clock()
        if self._at is not None:
            self._tokens = min(1.0, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
