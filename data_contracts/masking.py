"""Masking of personal data fields: the one policy of ``oafin.masking``, under its older name.

Every personal number keeps its last 4 characters only (resident ids included: the reference
allows at most the first 6 and last 4, and free text never shows more than the last 4, so one
rule holds everywhere). Short or odd values never show more than half their characters.
"""

from __future__ import annotations

from oafin.masking import MASK_CHAR, mask_bank_card, mask_id_number, mask_phone

__all__ = ["MASK_CHAR", "mask_bank_card", "mask_id_number", "mask_phone"]
