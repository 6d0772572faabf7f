"""HTTP errors of the server: one body shape (``{"detail", "message"}``, plus ``errors`` for
422), readable validation details, and the exception handlers every app installs."""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .schemas import ErrorResponse

log = logging.getLogger("iranker.serve")


class ApiError(Exception):
    """An error with an HTTP status and a readable detail (raised by the endpoints)."""

    def __init__(self, status_code: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers or {}


def error_response(
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail, "message": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


async def send_json(send: Callable, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail, "message": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _loc_text(loc: tuple) -> str:
    parts = list(loc[1:]) if len(loc) > 1 and loc[0] == "body" else list(loc)
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "body"


def format_validation_errors(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """A readable one-line detail naming each field, and a JSON-safe list of the errors."""
    msgs: list[str] = []
    clean: list[dict[str, Any]] = []
    for e in errors:
        where = "body" if e.get("type") == "json_invalid" else _loc_text(tuple(e.get("loc", ())))
        msg = str(e.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if e.get("type") == "json_invalid":
            ctx = e.get("ctx") or {}
            msg = f"invalid JSON ({ctx.get('error', 'could not decode')})"
        if e.get("type") == "missing" and where == "body":
            msg = "a JSON object is required"
        if where == "body" and e.get("type") == "value_error":
            text = msg  # model-level checks already name their field(s)
        elif msg.startswith(where):
            text = msg
        else:
            text = f"{where}: {msg}"
        if text not in msgs:
            msgs.append(text)
        clean.append({"loc": [str(x) for x in e.get("loc", ())], "msg": msg, "type": e.get("type", "")})
    return "; ".join(msgs) or "invalid request", clean


def body_parse_detail(cause: BaseException | None) -> str | None:
    """What was wrong with a body FastAPI could not parse, naming it (FastAPI's own 400 says
    only "There was an error parsing the body"); None for another cause."""
    if isinstance(cause, UnicodeDecodeError):
        return (
            f"body: not valid UTF-8 (byte 0x{cause.object[cause.start]:02x} at position {cause.start}); "
            "send JSON encoded as UTF-8"
        )
    if isinstance(cause, RecursionError):
        return "body: JSON nested too deeply to parse; no field of this API nests more than a few levels"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return f"body: invalid JSON ({str(cause).split(';')[0]})"
    return None


#: the error responses every ranking endpoint documents in its OpenAPI entry
ERRORS_DOC: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Body not UTF-8 or nested too deeply to parse"},
    401: {"model": ErrorResponse, "description": "Missing or invalid bearer token"},
    408: {"model": ErrorResponse, "description": "Headers or body not received in time (connection closed)"},
    413: {"model": ErrorResponse, "description": "Body, document count or document length over a limit"},
    422: {"model": ErrorResponse, "description": "Malformed body; the detail names the field"},
    502: {"model": ErrorResponse, "description": "The backend failed on this batch"},
    503: {"model": ErrorResponse, "description": "Overloaded (retry) or shutting down"},
    504: {"model": ErrorResponse, "description": "Timed out"},
}


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as ``error_response``: 422 with the field named, ``ApiError`` as
    raised, Starlette's HTTP errors (a 400 says why the body did not parse), and a 500 that
    names only the exception type for a bug (logged with its traceback)."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        detail, errors = format_validation_errors(list(exc.errors()))
        return error_response(422, detail, errors=errors)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status_code, exc.detail, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        detail = body_parse_detail(exc.__cause__) if exc.status_code == 400 else None
        return error_response(
            exc.status_code, detail or str(exc.detail), headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # pragma: no cover - a bug
        log.exception("unexpected error on %s", request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}")


__all__ = [
    "ERRORS_DOC",
    "ApiError",
    "body_parse_detail",
    "error_response",
    "format_validation_errors",
    "install_error_handlers",
    "send_json",
]
