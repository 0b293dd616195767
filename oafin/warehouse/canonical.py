"""Canonical JSON text: what the warehouse hashes (raw payloads, the audit chain, correction content).

Its own module, importing nothing of the warehouse, so the schema's modules (``audit`` is loaded
while ``store`` is) and ``store`` share one definition.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class PayloadTooDeepError(ValueError):
    """A payload nested deeper than ``json.dumps`` can follow (it would raise ``RecursionError``)."""


def canonical_json(payload: Any) -> str:
    """Stable JSON text: sorted keys, no whitespace, Decimals as text (money never goes through float).

    Raises ``PayloadTooDeepError``, never ``RecursionError``, for a payload nested too deeply.
    """
    try:
        return json.dumps(
            payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=_json_default
        )
    except RecursionError:
        raise PayloadTooDeepError("payload nested too deeply to store") from None
