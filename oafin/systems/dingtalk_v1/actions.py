"""dingtalk-v1's write-back: a comment on an approval instance over v1.0.

``POST /v1.0/workflow/processInstances/comments`` with ``{processInstanceId, text, commentUserId}``
(source-systems.md §1.5; the official SDK's ``add_process_instance_comment``, real-clients.md §1.1).
The plan (which instance, which user, what text) is the topapi action's: the same company's DingTalk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oafin.systems.dingtalk.actions import StatusComment, comment_text


class StatusCommentV1(StatusComment):
    """Finance's status of a claim, posted as a comment on its OA instance (v1.0)."""

    description = "a comment on the approval instance (v1.0 processInstances/comments)"

    def send(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        reply = client.add_comment(
            content["instance_id"], comment_text(content, marker), content["comment_userid"]
        )
        return {k: reply.get(k) for k in ("result", "success")}
