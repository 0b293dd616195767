"""DingTalk's write-back: a comment on an approval instance (topapi/process/instance/comment/add)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oafin.systems.base import ActionInput, ActionPlan, CannotPropose


def comment_text(content: Mapping[str, Any], marker: str) -> str:
    return f"{content['text']} {marker}"


class StatusComment:
    """Finance's status of a claim, posted as a comment on its OA instance."""

    name = "oa_status_comment"
    description = "a comment on the approval instance (process/instance/comment/add)"

    def plan(self, data: ActionInput) -> ActionPlan:
        userid = data.options.get("comment_userid")
        if not userid:
            raise CannotPropose("set corrections.comment_userid (the DingTalk user the comment is posted as)")
        claim = data.claim
        instance_id = str(claim["claim_id"]).split(":", 1)[1]
        return ActionPlan(
            content={"instance_id": instance_id, "comment_userid": userid, "text": data.text or ""},
            target=f"dingtalk instance {instance_id} (OA {claim['claim_no']})",
            preview=f"DingTalk: comment on OA {claim['claim_no']}: {data.text}",
        )

    def landed(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        record = client.find_comment(content["instance_id"], marker)
        return None if record is None else {"found": "ADD_REMARK", "date": record.get("date")}

    def send(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        reply = client.add_comment(
            content["instance_id"], comment_text(content, marker), content["comment_userid"]
        )
        return {k: reply.get(k) for k in ("errcode", "errmsg", "result", "request_id")}
