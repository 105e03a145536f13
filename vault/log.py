"""structlog, configured once: JSON lines when not on a terminal, and no plaintext PII ever.

The vault logs ids, counts, field names and outcomes, never values. As a second line of defence
:func:`scrub_pii` drops the value of any key that names a personal field and redacts anything in
a string that looks like a phone number, an email address or a resident ID number.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"
PII_KEYS = frozenset(
    {
        "name",
        "phone",
        "mobile",
        "email",
        "address",
        "id_number",
        "birthday",
        "nickname",
        "note",
        "bank_account",
        "value",
        "values",
        "text",
        "external_id",
        "token",
        "passphrase",
        "password",
        "secret",
        "key",
    }
)
_PII_PATTERNS = (
    re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)"),  # CN mobile
    re.compile(r"\+\d{7,15}"),  # any E.164 number
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),  # email
    re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])"),  # resident ID number
)


def redact_text(text: str) -> str:
    for pattern in _PII_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def scrub_pii(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        value = event_dict[key]
        if key in PII_KEYS:
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
    return event_dict


_configured = False


def ensure_configured() -> None:
    """Give a library user quiet defaults (warnings, on stderr, scrubbed) unless the
    application configured structlog itself."""
    if not _configured and not structlog.is_configured():
        configure_logging(level=os.environ.get("VAULT_LOG_LEVEL", "WARNING"))


def configure_logging(*, level: str = "WARNING", json: bool | None = None) -> None:
    """Configure structlog (later calls reconfigure it). The vault logs only through structlog;
    records of other libraries' stdlib loggers are not scrubbed, and the vault never passes them
    values."""
    global _configured
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.WARNING)
    render_json = (not sys.stderr.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if render_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrub_pii,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = True
