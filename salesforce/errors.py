"""Typed errors of the Salesforce client layer, which Salesforce error codes are worth a retry, and which
refused logins an administrator fixes (and how)."""

from dataclasses import dataclass

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


@dataclass(frozen=True)
class LoginBlock:
    """A refused login that the org's administrator fixes, after which the same job can log in again:
    `reason` is one of LOGIN_BLOCK_REASONS (metric names are built from it), `fix` says what to do."""

    reason: str
    summary: str
    fix: str


_BLOCKS = (
    LoginBlock(
        "password_expired",
        "the API user's password has expired",
        "set a new password for the user (Setup > Users > Reset Password, or log in once as the user) and "
        "update SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN where the job reads them; an integration "
        "user's profile can have 'Password never expires'",
    ),
    LoginBlock(
        "user_locked",
        "the API user is locked out",
        "an administrator unlocks the user (Setup > Users > the user > Unlock), or the org's lockout "
        "period ends; check that the job's credentials are the current ones, since failed logins lock "
        "the user again",
    ),
    LoginBlock(
        "ip_restricted",
        "Salesforce refuses logins from this IP address",
        "add the workers' outbound IP addresses to the user's profile Login IP Ranges (or the org's "
        "trusted IP ranges), or relax the connected app's IP policy",
    ),
    LoginBlock(
        "token_revoked",
        "the refresh token was revoked or has expired",
        "authorize the connected app again and put the new refresh token in SALESFORCE_REFRESH_TOKEN (or "
        "the file or secret the job reads it from)",
    ),
    LoginBlock(
        "app_not_approved",
        "the user is not approved for the connected app",
        "pre-authorize the user: Setup > App Manager > the connected app > Manage > Edit Policies, "
        "Permitted Users 'Admin approved users are pre-authorized', then add the user's profile or a "
        "permission set to the app",
    ),
)
LOGIN_BLOCKS = {block.reason: block for block in _BLOCKS}
LOGIN_BLOCK_REASONS = tuple(LOGIN_BLOCKS)

# (code, words in the message) -> reason. SOAP faults carry the partner API's ExceptionCode (Salesforce
# KB 000212767 for the expired password); the token endpoint answers OAuth's `error` with Salesforce's
# `error_description` (Salesforce Help, "OAuth 2.0 Authorization Errors").
_BLOCK_CODES = (
    ("INVALID_OPERATION_WITH_EXPIRED_PASSWORD", "", "password_expired"),
    ("PASSWORD_LOCKOUT", "", "user_locked"),
    ("LOGIN_DURING_RESTRICTED_DOMAIN", "", "ip_restricted"),
    ("invalid_grant", "ip restricted", "ip_restricted"),
    ("invalid_grant", "locked", "user_locked"),
    ("invalid_grant", "password expired", "password_expired"),
    ("invalid_grant", "expired access/refresh token", "token_revoked"),
    ("invalid_grant", "hasn't approved this consumer", "app_not_approved"),
    ("invalid_app_access", "", "app_not_approved"),
)


def login_block(code: str, message: str) -> LoginBlock | None:
    """The administrator-fixable cause of a refused login, or None (wrong credentials, a bad setting)."""
    text = (message or "").lower()
    for wanted, words, reason in _BLOCK_CODES:
        if code == wanted and words in text:
            return LOGIN_BLOCKS[reason]
    return None


class SalesforceLoginError(Exception):
    """The login was refused: `code` and `message` from the login fault, never the password; `block`
    when an administrator can fix the cause (see LoginBlock)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"Salesforce login failed ({code}): {message}")
        self.code = code
        self.message = message
        self.block = login_block(code, message)


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
