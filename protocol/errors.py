"""One error hierarchy for the API; handlers raise, one middleware renders SPEC 11's body."""

from __future__ import annotations


class ApiError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequest(ApiError):
    status = 400
    code = "invalid_request"


class Unauthorized(ApiError):
    status = 401
    code = "invalid_signature"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


class Conflict(ApiError):
    status = 409
    code = "conflict"


def idempotency_conflict(key: str = "merchant_order_id") -> Conflict:
    """A replay of an idempotency key (`merchant_order_id`, `external_id`, a credit's
    `reference`) with fields other than the first request's: 409."""
    return Conflict(f"{key} already used with different fields", field=key,
                    code="idempotency_conflict")  # fmt: skip


def archived_order(key: str = "merchant_order_id") -> Conflict:
    """A replay of an idempotency key whose object is archived (its month detached,
    migration 0021): the key stays used, and the object is no longer here to answer: 409."""
    return Conflict(f"{key} already used, by an object of an archived month", field=key,
                    code="idempotency_conflict")  # fmt: skip


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class BusinessRefusal(ApiError):
    """A well-formed request that the rules refuse (funds, limits, risk): 422."""

    status = 422
    code = "refused"


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"

    def __init__(
        self, message: str, *, code: str | None = None, retry_after_s: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}
