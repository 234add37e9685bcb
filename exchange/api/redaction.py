"""Secrets never reach a log: a logging filter that masks API key material in every record.

The server's logs hold what clients send: uvicorn's access log writes each request line,
query string included, and its trace level whole ASGI scopes, headers included. A key sent
where it does not belong (``?api_key=...``, which this API refuses, but only after the request
line is logged) or quoted in an error would otherwise be written out in full. The filter
rewrites each record before any handler formats it:

- an API key in its own format (``dxk_<id>.<secret>``) anywhere keeps its id, which names the
  key without granting anything, and loses its secret;
- the value of an ``api_key``/``api-key`` query parameter or JSON field, and of an
  ``X-API-Key`` header, whatever it holds, is masked.

:func:`install` puts the filter on uvicorn's access and error loggers (which uvicorn logs to
directly) and on every handler of the root and uvicorn loggers, where records of the
exchange's own loggers end up; the app's lifespan calls it, once uvicorn has set up logging.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Final

__all__ = ["MASK", "RedactSecrets", "install", "redact"]

MASK: Final = "[redacted]"
_PATTERNS: Final = (
    # Whatever is named as a key, up to the next separator: a query parameter or form field
    # (api_key=...), a header as text (x-api-key: ...) or in an ASGI scope
    # ((b'x-api-key', b'...')), a JSON or Python mapping's field ("api_key": "...").
    (
        re.compile(
            r"""(?i)(\b(?:x-)?api[_-]?key['"]?\s*[:,=]\s*b?['"]?)"""
            rf"(?!b?['\"]?{re.escape(MASK)})[^\s'\",;&}}\])]+"
        ),
        rf"\1{MASK}",
    ),
    # A key in its own format: new_api_key's "dxk_" + 16 hex digits, ".", a url-safe secret.
    (re.compile(r"(dxk_[0-9a-f]{16})\.[A-Za-z0-9_-]+"), rf"\1.{MASK}"),
)
_LOGGERS: Final = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """``text`` with every API key's secret and every api-key value masked.

    >>> redact('GET /v1/ws/private?api_key=dxk_0123456789abcdef.s3cr3t-_x HTTP/1.1')
    'GET /v1/ws/private?api_key=[redacted] HTTP/1.1'
    >>> redact("(b'x-api-key', b'dxk_0123456789abcdef.s3cr3t')")
    "(b'x-api-key', b'[redacted]')"
    >>> redact('key dxk_0123456789abcdef.s3cr3t was refused')
    'key dxk_0123456789abcdef.[redacted] was refused'
    """
    lowered = text.lower()
    if "key" not in lowered and "dxk_" not in lowered:  # the common case: nothing to mask
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redacted_arg(arg: object) -> object:
    """``arg``, or its text redacted if that text held a secret (numbers pass as they are,
    since a format such as ``%d`` needs them)."""
    if arg is None or isinstance(arg, (bool, int, float)):
        return arg
    text = arg if isinstance(arg, str) else str(arg)
    masked = redact(text)
    return arg if masked == text else masked


class RedactSecrets(logging.Filter):
    """Mask key material in a record's message, arguments, exception and stack text.

    The arguments are masked one by one rather than merged into the message, so a formatter
    that reads them (uvicorn's access log does) still finds them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted_arg(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: _redacted_arg(arg) for key, arg in record.args.items()}
        if record.exc_info and not record.exc_text:
            # Formatted here, as a handler would, so that the text it prints is the masked one.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install() -> None:
    """Put one :class:`RedactSecrets` on uvicorn's access and error loggers and on every
    handler of the root and uvicorn loggers (and the last-resort handler). Idempotent."""
    redactor = RedactSecrets()
    filterers: list[logging.Filterer] = []
    for name in _LOGGERS:
        filterers.append(logging.getLogger(name))
    for name in ("", "uvicorn", *_LOGGERS):
        filterers.extend(logging.getLogger(name).handlers)
    if logging.lastResort is not None:
        filterers.append(logging.lastResort)
    for filterer in filterers:
        if not any(isinstance(f, RedactSecrets) for f in filterer.filters):
            filterer.addFilter(redactor)
