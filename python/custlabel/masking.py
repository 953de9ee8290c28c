"""Passwords kept out of output and logs: in URLs, libpq strings, PG* assignments and the configured secrets."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

from custlabel.config import Settings

MASK = "***"
# scheme://user:password@host, password=... (libpq, quoted or not), PGPASSWORD=... (shell).
# A URL's password may hold a space as SQLAlchemy renders it, never a raw @ or /.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@/\n]+)(?=@)", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\b(?:password|PGPASSWORD)\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)

_known: set[str] = set()
_previous_factory: Callable[..., logging.LogRecord] | None = None


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with every password in it replaced by ***."""
    text = _URL_PASSWORD.sub(lambda match: match["head"] + MASK, text)
    text = _KEYWORD_PASSWORD.sub(lambda match: match["head"] + MASK, text)
    for secret in sorted({*_known, *secrets}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def settings_secrets(settings: Settings) -> list[str]:
    """The passwords the settings hold: the warehouse's and the BI role's."""
    return [secret for secret in (settings.connection.password, settings.bi_role.password) if secret]


def _masking_factory(*args, **kwargs) -> logging.LogRecord:
    record = _previous_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is the handler's to report, as without masking
        return record
    masked = mask(message)
    if masked != message:
        record.msg, record.args = masked, None
    return record


def protect_logs(settings: Settings) -> None:
    """Mask passwords in every log record from now on, whichever logger or handler (Prefect's too) takes it."""
    global _previous_factory
    _known.update(secret for secret in settings_secrets(settings) if len(secret) >= 4)
    if _previous_factory is None:
        _previous_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_masking_factory)
