"""Source text inside markdown (Prefect artifacts, the approval form): shown, never interpreted.

A claim number such as ``![x](http://evil)[**APPROVE_ALL_HERE**](http://evil)`` must render as
those characters, not as an image that calls out and a bold link (issue #10 item 7). Every value
that came from a source system goes through ``md_text`` wherever markdown is built.
"""

from __future__ import annotations

import re
import string
from typing import Any

# CommonMark: any ASCII punctuation character may be backslash-escaped, and then is literal.
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\x00-\x08\x0e-\x1f\x7f\u2028\u2029\x85]+")


def md_text(value: Any) -> str:
    """``value`` as literal markdown text, safe inside a paragraph or a table cell.

    Every ASCII punctuation character is backslash-escaped (no links, images, emphasis, code,
    HTML, entities or headings; ``|`` cannot split a table cell) and line breaks and control
    characters become one space (a value cannot end a table row or start a block)."""
    if value is None:
        return ""
    text = _LINE_BREAKS.sub(" ", str(value))
    return _PUNCTUATION.sub(r"\\\1", text)
