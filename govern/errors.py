"""One error shape for every 4xx and 5xx: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging

import psycopg
from flask import Flask, current_app, jsonify
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from govern.exceptions import (
    Conflict,
    Exhausted,
    Forbidden,
    GovernError,
    Invalid,
    NotFound,
    TooLarge,
)

log = logging.getLogger("govern.errors")

__all__ = ["CODES", "STATUS_OF", "ApiError", "Conflict", "Exhausted", "Forbidden", "GovernError",
           "Invalid", "NotFound", "TooLarge", "as_api_error", "error_response",
           "register_error_handlers", "status_of"]

CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """Raised by HTTP handlers for what only HTTP knows (authentication, media types,
    request limits); rendered as the standard error body. The domain raises
    govern.exceptions instead, mapped below."""

    def __init__(self, status: int, message: str, code: str | None = None, details=None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.details = details
        self.headers = headers or {}


# The domain's refusals (govern.exceptions), as HTTP: the one place that maps them.
STATUS_OF = {NotFound: 404, Conflict: 409, Invalid: 422, Forbidden: 403, TooLarge: 413,
             Exhausted: 429}


def status_of(exc: GovernError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return 400


def as_api_error(exc: GovernError | ApiError) -> ApiError:
    """A domain refusal as the API answers it (an ApiError as it is)."""
    if isinstance(exc, ApiError):
        return exc
    headers = {}
    if isinstance(exc, Exhausted) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return ApiError(status_of(exc), exc.message, exc.code, exc.details, headers)


def error_response(status: int, code: str, message: str, details=None, headers=None):
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    resp = jsonify(body)
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


# Aborted by the server for concurrency or time, not because it is down.
TRANSIENT = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure,
             psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled)


def _is_connection_error(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError) or bool(getattr(exc, "connection_invalidated", False))


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.errorhandler(GovernError)
    def _refused(exc: GovernError):
        return _api_error(as_api_error(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        details = None
        data = getattr(exc, "data", None)
        if isinstance(data, dict):
            details = data.get("messages") or data.get("errors")
            if isinstance(details, dict) and set(details) <= {"json", "query", "form", "files",
                                                              "headers", "path", "view_args"}:
                # webargs nests by location; flatten the common single-location case
                if len(details) == 1:
                    details = next(iter(details.values()))
        message = exc.description if isinstance(exc.description, str) else exc.name
        if data and isinstance(data, dict) and data.get("message"):
            message = data["message"]
        if status == 422:
            message = "The request did not validate; see details."
        headers = {}
        if status == 405 and exc.get_headers():
            headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
        return error_response(status, CODES.get(status, exc.name.lower().replace(" ", "_")),
                              message, details, headers)

    @app.errorhandler(DBAPIError)
    def _db_error(exc: DBAPIError):
        if isinstance(getattr(exc, "orig", None), TRANSIENT):
            log.warning("database busy: %s", str(exc.orig).splitlines()[0])
            return error_response(503, "busy",
                                  "The database could not finish this request now (a conflict "
                                  "with concurrent work); nothing was stored. Retry.",
                                  headers={"Retry-After": "1"})
        if _is_connection_error(exc):
            log.warning("database unavailable: %s", str(exc.orig or exc).splitlines()[0])
            retry = str(current_app.config["GOVERN"].retry_after_seconds)
            return error_response(503, "unavailable",
                                  "The database is unreachable; nothing was stored. Retry later.",
                                  headers={"Retry-After": retry})
        if isinstance(exc, DataError):
            # a value the database cannot hold (out of range, bad encoding): the input's fault
            log.info("database refused a value: %s", str(exc.orig or exc).splitlines()[0])
            return error_response(422, "validation_failed",
                                  "A value is out of the range the database can store.",
                                  {"database": [str(exc.orig or exc).splitlines()[0][:200]]})
        log.exception("database error")
        return error_response(500, "internal_error", "Internal error.")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return _http_error(exc)
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Internal error.")
