"""Masking for reports, artifacts and logs: the one policy of ``oafin.masking``, under its older name.

Personal numbers keep only their last 4 (see ``oafin.masking``); cells a spreadsheet would run as
a formula are neutralised by ``safe_cell``.
"""

from __future__ import annotations

from oafin.masking import MASK, formula_safe, mask_key, redact_text, safe_cell

__all__ = ["MASK", "formula_safe", "mask_key", "redact_text", "safe_cell"]
