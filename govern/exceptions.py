"""What the domain refuses, without HTTP: each refusal carries the machine-readable code and
the message clients are shown; govern.errors maps the kinds to HTTP statuses, once.

Domain, policy and SQL modules raise these and know nothing of Flask; the API renders them
as the one error body, the CLI prints their message.
"""

from __future__ import annotations


class GovernError(Exception):
    """A refusal: `code` for machines, `message` for people, `details` per field."""

    default_code = "error"

    def __init__(self, message: str, code: str | None = None, details=None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details


class NotFound(GovernError):
    """The thing named does not exist (or is not the caller's tenant's)."""

    default_code = "not_found"

    def __init__(self, what: str = "resource"):
        super().__init__(f"{what} not found")


class Conflict(GovernError):
    """The request contradicts the state it would change."""

    default_code = "conflict"

    def __init__(self, message: str, code: str = "conflict", details=None):
        super().__init__(message, code, details)


class Invalid(GovernError):
    """The input is not acceptable."""

    default_code = "validation_failed"

    def __init__(self, message: str, details=None, code: str = "validation_failed"):
        super().__init__(message, code, details)


class Forbidden(GovernError):
    """The caller is known but may not do this."""

    default_code = "forbidden"


class TooLarge(GovernError):
    """A value is larger than the rules allow."""

    default_code = "payload_too_large"


class Exhausted(GovernError):
    """An allowance is spent for now; `retry_after` seconds until it renews (if known)."""

    default_code = "rate_limited"

    def __init__(self, message: str, code: str | None = None, details=None,
                 retry_after: int | None = None):
        super().__init__(message, code, details)
        self.retry_after = retry_after
