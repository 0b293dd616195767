"""Feishu's write-back: a comment on an approval instance (``POST .../instances/:id/comments``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oafin.systems.base import ActionInput, ActionPlan, CannotPropose


def comment_text(content: Mapping[str, Any], marker: str) -> str:
    return f"{content['text']} {marker}"


class StatusComment:
    """Finance's status of a claim, posted as a comment on its Feishu approval instance."""

    name = "oa_status_comment"
    description = "a comment on the approval instance (approval/v4/instances/:id/comments)"

    def plan(self, data: ActionInput) -> ActionPlan:
        user = data.options.get("comment_userid")
        if not user:
            raise CannotPropose(
                "set corrections.comment_userid (the Feishu user_id or open_id the comment is posted as)"
            )
        claim = data.claim
        instance_code = str(claim["claim_id"]).split(":", 1)[1]
        return ActionPlan(
            content={"instance_code": instance_code, "user_id": user, "text": data.text or ""},
            target=f"feishu instance {instance_code} (OA {claim['claim_no']})",
            preview=f"Feishu: comment on OA {claim['claim_no']}: {data.text}",
        )

    def landed(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        comment = client.find_comment(content["instance_code"], marker)
        return None if comment is None else {"found": "comment", "id": comment.get("id")}

    def send(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        reply = client.add_comment(
            content["instance_code"], comment_text(content, marker), content["user_id"]
        )
        data = reply.get("data") if isinstance(reply.get("data"), dict) else {}
        return {"code": reply.get("code"), "msg": reply.get("msg"), "comment_id": data.get("comment_id")}
