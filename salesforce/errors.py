"""Typed errors of the Salesforce client layer, and which Salesforce error codes are worth a retry."""

# Codes where the same request can succeed later without any change: lock contention, platform hiccups,
# rollbacks caused by a sibling record, and Bulk API's lock-failure job state.
RETRYABLE_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "SERVER_UNAVAILABLE",
        "UNKNOWN_EXCEPTION",
        "QUERY_TIMEOUT",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "PROCESSING_HALTED",
        "TooManyLockFailure",
    }
)


def is_retryable(error_code: str | None) -> bool:
    """True when Salesforce's error code says a later retry of the same request could succeed."""
    return error_code in RETRYABLE_CODES


class ConfigurationError(ValueError):
    """Bad configuration or credentials; the message names what to fix."""


class SalesforceLoginError(Exception):
    """The login was refused: `code` and `message` from the login fault, never the password."""

    def __init__(self, code: str, message: str):
        super().__init__(f"Salesforce login failed ({code}): {message}")
        self.code = code
        self.message = message


class ApiLimitExceeded(Exception):
    """The org's daily API allocation is used up (REQUEST_LIMIT_EXCEEDED TotalRequests): not retryable now."""

    error_code = "REQUEST_LIMIT_EXCEEDED"

    def __init__(self, message: str):
        super().__init__(f"{self.error_code}: {message}")
        self.message = message


class ApiUsageReserved(ApiLimitExceeded):
    """The org's daily API usage reached the share this pipeline may use (--api_usage_limit_percent):
    the call was not made, so the rest stays for the org's other integrations. Retryable later."""

    error_code = "API_USAGE_RESERVED"


class TransientError(Exception):
    """A call kept failing with a transient error (5xx, lock, connection) after every retry, or could
    not reach Salesforce in a way no retry fixes (error_code "SSLError": an untrusted certificate;
    "NameResolutionError": a login host that does not resolve), raised after one attempt.

    `maybe_applied` is True when the request may have reached Salesforce and been carried out before
    the failure (a create must then be looked up, not resent).
    """

    def __init__(self, error_code: str, message: str, attempts: int, maybe_applied: bool = False):
        super().__init__(f"{error_code}: {message} (after {attempts} attempt(s))")
        self.error_code = error_code
        self.message = message
        self.attempts = attempts
        self.maybe_applied = maybe_applied


class SalesforceApiError(Exception):
    """Salesforce refused a call for a reason a retry will not fix (bad SOQL, unknown object, no access)."""

    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(f"{error_code} (HTTP {status}): {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
