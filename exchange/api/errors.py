"""Domain errors to HTTP: the one place that chooses status codes.

Every error body is ``{"detail": "<what is wrong>", "reason": "<CODE>"}``. Nothing here is a
500: a refusal of the exchange is a 4xx by its reason, a request that fails validation a 422
naming the field, and a sequencer that cannot commit a 503 (retry).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from exchange.errors import ExchangeError, Reason
from exchange.money import AmountError
from exchange.sequencer import SequencerStopped

from .bodies import DuplicateJsonKey

__all__ = ["ApiError", "install_error_handlers", "status_of"]

_STATUS = {
    Reason.VALIDATION_INVALID: 422,
    Reason.VALIDATION_UNKNOWN_INSTRUMENT: 422,
    Reason.VALIDATION_UNKNOWN_PRODUCT: 404,
    Reason.VALIDATION_UNKNOWN_PARTICIPANT: 404,
    Reason.VALIDATION_UNKNOWN_ORDER: 404,
    Reason.VALIDATION_ORDER_NOT_OPEN: 409,
    Reason.VALIDATION_DUPLICATE: 409,
    Reason.VALIDATION_DUPLICATE_INSTRUMENT: 409,
    Reason.VALIDATION_DUPLICATE_ORDER_ID: 409,
    Reason.VALIDATION_IDEMPOTENCY_CONFLICT: 409,
    Reason.VALIDATION_PHASE: 409,
    Reason.VALIDATION_HOUSEKEEPING_DUE: 409,
    Reason.VALIDATION_UNKNOWN_RFQ: 404,
    Reason.VALIDATION_UNKNOWN_QUOTE: 404,
    Reason.VALIDATION_UNKNOWN_REPORT: 404,
    Reason.VALIDATION_RFQ_CLOSED: 409,
    Reason.VALIDATION_QUOTE_NOT_LIVE: 409,
    Reason.VALIDATION_REPORT_CLOSED: 409,
    Reason.VALIDATION_UNKNOWN_KEY: 404,
    Reason.VALIDATION_UNKNOWN_FACILITY: 404,
    Reason.VALIDATION_UNKNOWN_PLEDGE: 404,
    Reason.VALIDATION_FACILITY_STATE: 409,
    Reason.AUTH_FORBIDDEN: 403,
    Reason.AUTH_DISABLED: 403,
    Reason.MATCHING_UNCROSS_NOT_IN_PHASE: 409,
    Reason.MATCHING_PHASE_NOT_IN_MODE: 409,
}


def status_of(reason: Reason) -> int:
    if reason in _STATUS:
        return _STATUS[reason]
    if reason.startswith("COMPLIANCE_"):
        return 409  # the product's state forbids it
    return 422  # RISK_*: the request cannot be covered; other VALIDATION_* and MATCHING_*


class ApiError(Exception):
    """An HTTP error raised by a route or dependency."""

    def __init__(self, status: int, detail: str, reason: str, headers: dict | None = None):
        self.status, self.detail, self.reason, self.headers = status, detail, reason, headers


def _body(detail: str, reason: str) -> dict[str, str]:
    return {"detail": detail, "reason": reason}


def _field(location: tuple) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path")]
    return ".".join(parts) or "request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ExchangeError)
    async def _exchange_error(_: Request, error: ExchangeError) -> JSONResponse:
        return JSONResponse(_body(error.message, error.reason), status_of(error.reason))

    @app.exception_handler(AmountError)
    async def _amount_error(_: Request, error: AmountError) -> JSONResponse:
        return JSONResponse(_body(str(error), "VALIDATION_INVALID"), 422)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(_body(error.detail, error.reason), error.status, error.headers)

    @app.exception_handler(SequencerStopped)
    async def _stopped(_: Request, error: SequencerStopped) -> JSONResponse:
        return JSONResponse(_body(str(error), "UNAVAILABLE"), 503, {"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{_field(e['loc'])}: {e['msg']}" for e in error.errors()[:10]]
        return JSONResponse(_body("; ".join(problems), "VALIDATION_INVALID"), 422)

    @app.exception_handler(DuplicateJsonKey)
    async def _duplicate_key(_: Request, error: DuplicateJsonKey) -> JSONResponse:
        return JSONResponse(_body(str(error.detail), error.reason), error.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            _body(str(error.detail), "HTTP"), error.status_code, getattr(error, "headers", None)
        )
