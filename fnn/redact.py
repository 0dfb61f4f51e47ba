"""The one place credentials in URLs are masked: ``postgresql://user:secret@host/db`` becomes
``postgresql://user:***@host/db`` in everything fnn prints, writes into a report, or records
in W&B (config and command line)."""

from __future__ import annotations

import re
from typing import Any

# scheme://user:password@host  (the password: up to the token's last @, as a URL parser reads it)
_CREDENTIALS = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<secret>\S*)@(?=[^@\s]*(?:\s|$))"
)


def mask(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _CREDENTIALS.sub(lambda m: f"{m.group('head')}***@", text)


def masked(value: Any) -> Any:
    """``value`` with every string in it (through dicts, lists and tuples) masked."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(masked(item) for item in value)
    return value
