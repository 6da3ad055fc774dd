"""What the dashboard shows of job arguments and error messages: ids and shapes, never text
that could be someone's personal data.

Why: by contract a job's arguments are ids and scalars, and errors are worded for people, but
an error's text can quote its input ("could not parse 'Jane Doe, jane@example.com'"), and an
argument may be a free string. The dashboard shows the error *code* as is, and the message
with quoted text, e-mail addresses, phone-like numbers, URLs and paths replaced.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile("'[^']*'|\"[^\"]*\"|\u201c[^\u201d]*\u201d|\u2018[^\u2019]*\u2019"),
        "[quoted text]",
    ),
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "[e-mail]"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE), "[url]"),
    (re.compile(r"(?<![\w-])(/[\w.@-]+){2,}"), "[path]"),
    (re.compile(r"\+?\d[\d ()./-]{6,}\d"), "[number]"),
)
MAX_MESSAGE = 400


def redact_message(message: str | None) -> str | None:
    """The message with anything that could quote personal data replaced (ids are kept)."""
    if not message:
        return message
    ids: list[str] = []

    def keep(match: re.Match[str]) -> str:
        ids.append(match.group(0))
        return f"\x00{len(ids) - 1}\x00"

    text = re.sub(_UUID, keep, message)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = re.sub(r"\x00(\d+)\x00", lambda m: ids[int(m.group(1))], text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _is_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def safe_args(args: dict[str, Any] | None) -> dict[str, str]:
    """A job's arguments as the dashboard shows them: ids, numbers, flags; other text is
    replaced by its kind and length."""
    shown: dict[str, str] = {}
    for key, value in sorted((args or {}).items()):
        if isinstance(value, bool) or value is None or isinstance(value, int | float):
            shown[key] = str(value)
        elif isinstance(value, str) and _is_id(value):
            shown[key] = value
        elif isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\d[T ][\d:.+Z-]*", value):
            shown[key] = value  # a timestamp (scheduled_for)
        elif isinstance(value, str):
            shown[key] = f"[text, {len(value)} characters]"
        elif isinstance(value, list):
            ids = all(isinstance(v, str) and _is_id(v) for v in value)
            shown[key] = ", ".join(value) if ids and len(value) <= 20 else f"[list of {len(value)}]"
        else:
            shown[key] = f"[{type(value).__name__}]"
    return shown
