"""Hesine's write-back: the ERP voucher number onto a paid document, and a comment on a document.

``landed`` reads Hesine only (flowDetails, §6.3): the voucher number is on the form, a comment is
a ``freeflow.comment`` log entry carrying the action's marker. ``send`` makes the write call once
(source-systems.md §6.5): ``erpVoucher`` only for a document in ``paid``, the comment with the
``$``-prefixed flowId in the path; the comment answers 204 with no body (real-clients.md §2.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from oafin.systems.base import ActionInput, ActionPlan, CannotPropose


def _flow_id(doc: Mapping[str, Any]) -> str:
    """The flowId of a Hesine finance_doc (doc_id ``hesine:<type>:<flowId>``)."""
    parts = str(doc["doc_id"]).split(":", 2)
    if len(parts) != 3 or parts[0] != "hesine":
        raise CannotPropose(f"document {doc.get('doc_no')} is not a Hesine document")
    return parts[2]


class WriteVoucherNo:
    """The ERP voucher booking a paid Hesine document, written back as its ``voucherNo`` (erpVoucher)."""

    name = "expense_write_voucher_no"
    description = "PUT flow/data/erpVoucher: the ERP voucher number onto a paid document"

    def plan(self, data: ActionInput) -> ActionPlan:
        doc = data.doc
        voucher = data.options.get("voucher") or {}
        if doc is None or not voucher.get("doc_no"):
            raise CannotPropose("no Hesine document and ERP voucher to link")
        if doc.get("status") != "paid":
            raise CannotPropose(
                f"{doc.get('doc_no')} is {doc.get('status')}: erpVoucher is allowed in paid only"
            )
        flow = _flow_id(doc)
        posted = voucher.get("posted_at")
        content = {
            "flow_id": flow,
            "voucher_no": str(voucher["doc_no"]),
            "voucher_time": posted.isoformat() if isinstance(posted, datetime) else str(posted or ""),
        }
        return ActionPlan(
            content=content,
            target=f"hesine document {flow} ({doc.get('doc_no')})",
            preview=f"Hesine: voucherNo of {doc.get('doc_no')} := {voucher['doc_no']}",
        )

    def landed(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        form = client.get_flow(content["flow_id"]).get("form") or {}
        return (
            {"voucherNo": form.get("voucherNo")} if form.get("voucherNo") == content["voucher_no"] else None
        )

    def send(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        text = content.get("voucher_time") or ""
        created = datetime.fromisoformat(text) if text else datetime.now().astimezone()
        reply = client.write_voucher(content["flow_id"], content["voucher_no"], created)
        return {"value": reply.get("value") if isinstance(reply, dict) else reply}


class Comment:
    """A comment on a Hesine document (flow/data/comment), posted as a configured staff id."""

    name = "expense_comment"
    description = "POST flow/data/comment/$<flowId>: a comment on the document"

    def plan(self, data: ActionInput) -> ActionPlan:
        staff = data.options.get("comment_staff_id")
        if not staff:
            raise CannotPropose("set the Hesine staff id comments are posted as (comment_staff_id)")
        if data.doc is None:
            raise CannotPropose("no Hesine document to comment on")
        flow = _flow_id(data.doc)
        return ActionPlan(
            content={"flow_id": flow, "staff_id": str(staff), "text": data.text or ""},
            target=f"hesine document {flow} ({data.doc.get('doc_no')})",
            preview=f"Hesine: comment on {data.doc.get('doc_no')}: {data.text}",
        )

    def landed(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        for log in client.get_flow(content["flow_id"]).get("logs") or []:
            comment = str((log.get("attributes") or {}).get("comment") or "")
            if log.get("action") == "freeflow.comment" and marker in comment:
                return {"found": "freeflow.comment", "time": log.get("time")}
        return None

    def send(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        reply = client.add_comment(content["flow_id"], f"{content['text']} {marker}", content["staff_id"])
        return {"status": "204 no content" if reply is None else reply}
