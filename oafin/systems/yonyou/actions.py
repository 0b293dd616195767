"""Yonyou YonBIP's write-back: the accrual voucher for an approved OA claim finance does not have.

``addVoucher`` (source-systems.md §8.1) books Dr 6602 管理费用 / Cr 2241 其他应付款 with the
applicant's staff code as 辅助核算 and the OA number in 自定义项1 (``defines.define1``), as the
vouchers oafin reads carry it (``mappings/yonyou.yaml``). ``landed`` reads YonBIP only (the check
before re-sending a ``pending`` action); ``send`` makes the one write call. Yonyou refuses a second
voucher for the same reference with 310504 / 310074 (§8.1): on a re-run that answer means the
voucher is there, so it is "already done", never an error and never a second voucher.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from oafin.standard import BUSINESS_TZ, yuan
from oafin.systems.base import ActionInput, ActionPlan, CannotPropose

logger = logging.getLogger(__name__)

EXPENSE_SUBJECT = "6602"  # 管理费用
PAYABLE_SUBJECT = "2241"  # 其他应付款
ACCRUAL_TYPE_CODE = "3"  # 转账凭证 (voucherTypeCodeList "1","2","3", real-clients.md §2.6)
_ZONE = ZoneInfo(BUSINESS_TZ)


def _local(moment: Any) -> datetime:
    value = moment if isinstance(moment, datetime) else datetime.fromisoformat(str(moment))
    return value.astimezone(_ZONE)


def _shift(period: str, months: int) -> str:
    year, month = map(int, period.split("-"))
    index = year * 12 + month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def find_voucher(client: Any, claim_no: str, make_time: str, around: int = 0) -> dict[str, Any] | None:
    """The voucher of the book carrying ``claim_no`` in ``defines.define1``, if any.

    queryVouchers has no filter on 自定义项 (§2.6 lists the filters), so the periods from ``around``
    months before the voucher's date to ``around`` after are read and matched here; whoever made
    the voucher, oafin never adds a second.
    """
    period = make_time[:7]
    query = {
        "accbookCode": client.accbook_code,
        "periodStart": _shift(period, -around),
        "periodEnd": _shift(period, around),
    }
    for record in client.iter_records(query):
        header = record.get("header") or {}
        if str((header.get("defines") or {}).get("define1") or "").strip() == claim_no:
            return header
    return None


class CreateVoucher:
    """The accrual voucher for an approved OA claim finance does not have (``addVoucher``)."""

    name = "finance_create_bill"
    description = (
        "addVoucher of an accrual voucher: Dr 6602 管理费用 / Cr 2241 其他应付款, OA number in 自定义项1"
    )

    def plan(self, data: ActionInput) -> ActionPlan:
        claim = data.claim
        staff = data.applicant_external_id
        if not staff:
            raise CannotPropose(
                f"applicant {claim.get('applicant_id')} has no yonyou staff code in the people table"
            )
        if (claim.get("currency") or "CNY") != "CNY":
            raise CannotPropose(
                f"currency {claim.get('currency')}: the accrual voucher is booked in CNY only"
            )
        amount = yuan(int(claim["amount_fen"]))
        made = _local(claim["approved_at"]).strftime("%Y-%m-%d")
        text = f"报销 {claim['claim_no']} {claim.get('title') or ''}".strip()
        aux = [{"type": "bd_staff", "valueCode": staff}]
        dept = claim.get("department_code")
        voucher = {
            "voucherTypeCode": ACCRUAL_TYPE_CODE,
            "makeTime": made,
            "defines": {"define1": claim["claim_no"]},
            "bodies": [
                {
                    "description": text,
                    "accsubjectCode": EXPENSE_SUBJECT,
                    "debitOriginal": amount,
                    "debitOrg": amount,
                    "rateType": "01",
                    "rateOrg": 1,
                    "busidate": made,
                    "clientAuxiliary": aux + ([{"type": "bd_dept", "valueCode": dept}] if dept else []),
                },
                {
                    "description": text,
                    "accsubjectCode": PAYABLE_SUBJECT,
                    "creditOriginal": amount,
                    "creditOrg": amount,
                    "rateType": "01",
                    "rateOrg": 1,
                    "busidate": made,
                    "clientAuxiliary": aux,
                },
            ],
        }
        return ActionPlan(
            content={"claim_no": claim["claim_no"], "voucher": voucher},
            target=f"yonyou voucher for OA {claim['claim_no']}",
            preview=(
                f"Yonyou: addVoucher Dr {EXPENSE_SUBJECT} / Cr {PAYABLE_SUBJECT} ¥{amount} for OA "
                f"{claim['claim_no']} (staff {staff}, dated {made})"
            ),
        )

    def landed(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        header = find_voucher(client, content["claim_no"], content["voucher"]["makeTime"])
        if header is None:
            return None
        return {
            "found": header.get("billcode"),
            "voucherId": str(header.get("id")),
            "status": header.get("voucherstatus"),
        }

    def send(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One ``addVoucher``; 310504 / 310074 (the voucher exists) is the write already done."""
        from oafin.systems.yonyou.client import DuplicateVoucherError

        voucher = {"accbookCode": client.accbook_code, **content["voucher"]}  # the source's book
        try:
            data = client.add_voucher(voucher)
        except DuplicateVoucherError as exc:
            logger.info("yonyou addVoucher for OA %s: already there (%s)", content["claim_no"], exc.detail)
            # the voucher Yonyou has may be booked in another period than the one planned
            header = find_voucher(client, content["claim_no"], voucher["makeTime"], around=12) or {}
            return {
                "already": True,
                "found": header.get("billcode"),
                "voucherId": str(header["id"]) if header.get("id") is not None else None,
                "answer": exc.detail,
            }
        return {"voucherId": str(data.get("voucherId")), "billCode": data.get("billCode")}
