"""The Feishu twin's data faults and rate-limit answer (what ``oafin.sandbox.faults`` applies).

``rate_limit_code``: ``{"code": 99991400, ...}``, Feishu's generic "request trigger frequency
limit" (source-systems.md §3.3 [C]); HTTP 429 is the middleware's own transport fault.
``duplicate_record``: a list page starts one instance early (the last of the previous page again);
``edited_record``: an approved instance read just before its approval landed (still PENDING);
``schema_drift``: a key the mapping does not know appears at the top level and a widget in the form;
``renamed_field``: the 报销金额 widget renamed 报销金额(元), so the record cannot be mapped;
``more_without_token``: a list page that says ``has_more: true`` with ``page_token: ""`` (what
the real last page sends with ``has_more: false``, real-clients.md §2.2): no way to go on;
``empty_pages``: list pages that are empty yet say ``has_more`` with a new token, for ever;
``invalid_utf8``: bytes that are not UTF-8 inside the 报销事由 widget's value (in the ``form`` string);
``deep_json``: a value nested 100,000 levels deep inside one instance.

The list and get calls share a path prefix; each change looks at the answer and leaves an answer of
the other call alone. The list's page tokens are the twin's own, so ``duplicate_record`` is built
with the twin's state (``profile(state)``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from oafin.sandbox.faults import FaultProfile, hostile_value
from oafin.systems.feishu.twin_render import dumps_numbers

TOKEN_PATH: Final = "/open-apis/auth/v3/tenant_access_token/internal"
INSTANCES_PATH: Final = "/open-apis/approval/v4/instances"
RENAMED_FIELD: Final = ("报销金额", "报销金额(元)")
UTF8_FIELD: Final = "报销事由"
BEYOND_THE_END: Final = 10**9  # the offset an empty_pages token opens: nothing is there
DRIFT_FIELD: Final = "instance_ext_v2"
RATE_LIMIT_BODY: Final = {"code": 99991400, "msg": "request trigger frequency limit", "data": {}}
# The page a page token opens: token -> (the window's ids, the offset of the page it opens).
Pages = dict[str, tuple[list[str], int]]


def is_read(path: str) -> bool:
    """The token, list and get calls; never the comment write-back."""
    return path == TOKEN_PATH or (path.startswith(INSTANCES_PATH) and not path.endswith("/comments"))


def _decoded_form(data: dict[str, Any]) -> list[Any] | None:
    try:
        form = json.loads(data.get("form") or "", parse_float=Decimal)
    except ValueError:
        return None
    return form if isinstance(form, list) else None


def changer(pages: Pages) -> Callable[[str, Any, Any], Any]:
    empty_tokens = itertools.count()

    def change(kind: str, request: Any, answer: Any) -> Any:
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict):
            return answer
        if "instance_code_list" in data:
            if kind == "more_without_token":
                data.update(has_more=True, page_token="")
            elif kind == "empty_pages":  # a token the twin knows, opening a page past the end
                token = f"oafin-empty-{next(empty_tokens)}"
                pages[token] = ([], BEYOND_THE_END)
                data.update(instance_code_list=[], has_more=True, page_token=token)
            elif kind == "duplicate_record":
                listed = data["instance_code_list"]
                opened = pages.get(str(data.get("page_token") or ""))
                if opened is not None and listed:
                    ids, following = opened
                    first = following - len(listed)
                    if first > 0:
                        data["instance_code_list"] = [ids[first - 1], *listed]
            return answer
        if "form" not in data:
            return answer
        if kind == "edited_record" and data.get("status") == "APPROVED":
            data.update(status="PENDING", end_time="0")
        elif kind == "schema_drift":
            data[DRIFT_FIELD] = {"source": "sandbox schema drift", "version": 2}
            form = _decoded_form(data)
            if form is not None:
                form.append({"id": "widget_drift", "name": "新增字段", "type": "input", "value": "drift"})
                data["form"] = dumps_numbers(form)
        elif kind == "deep_json":
            hostile_value(kind, data, "")
        elif kind == "invalid_utf8":
            form = _decoded_form(data)
            widget = next(
                (w for w in form or [] if isinstance(w, dict) and w.get("name") == UTF8_FIELD), None
            )
            if widget is not None and hostile_value(kind, widget, "value"):
                data["form"] = dumps_numbers(form)
        elif kind == "renamed_field":
            form = _decoded_form(data)
            if form is not None:
                old, new = RENAMED_FIELD
                renamed = [
                    {**w, "name": new} if isinstance(w, dict) and w.get("name") == old else w for w in form
                ]
                data["form"] = dumps_numbers(renamed)
        return answer

    return change


def profile(pages: Pages) -> FaultProfile:
    return FaultProfile(
        rate_limit_body=RATE_LIMIT_BODY,
        data_paths={
            "duplicate_record": INSTANCES_PATH,
            "edited_record": INSTANCES_PATH,
            "schema_drift": INSTANCES_PATH,
            "renamed_field": INSTANCES_PATH,
            "more_without_token": INSTANCES_PATH,
            "empty_pages": INSTANCES_PATH,
            "invalid_utf8": INSTANCES_PATH,
            "deep_json": INSTANCES_PATH,
        },
        change=changer(pages),
        is_read=is_read,
    )
