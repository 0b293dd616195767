"""Issue #10 item 7: source text in the approval form and artifacts is shown, never interpreted.

Rendered with a real CommonMark renderer (markdown-it, tables on): no link, no image, no
emphasis and no extra table cell comes out of what a source system sent."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from oafin.pipeline.corrections.service import approval_table
from oafin.reporting.markdown import md_text

ATTACK = "![x](http://evil.example/p.png)[**APPROVE_ALL_HERE**](http://evil.example/a)"
NASTY = [
    ATTACK,
    "BX-1 | injected | cell",
    "line one\n\n# Heading\n| a | b |",
    "<img src=x onerror=alert(1)>",
    "`code` *em* _em_ ~~del~~ &amp; \\[x\\]",
    "<http://evil.example>",
]


def _render(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


@pytest.mark.parametrize("value", NASTY)
def test_a_source_value_renders_as_its_own_text(value: str) -> None:
    html = _render(f"claim {md_text(value)} end")
    for tag in ("<a ", "<img", "<strong", "<em", "<code", "<h1", "<table", "<del"):
        assert tag not in html, html
    assert html.count("<p>") == 1


def _row(claim_no: str, preview: str) -> dict:
    return {
        "idempotency_key": "ab" * 32,
        "action": "oa_status_comment",
        "exception_type": "STATUS_MISMATCH",
        "claim_no": claim_no,
        "amount_fen": 1200,
        "preview": preview,
    }


def test_the_approval_form_shows_injected_claim_numbers_as_text() -> None:
    rows = [_row(ATTACK, "DingTalk: comment on OA " + ATTACK), _row("BX-2 | x\n| y", "line\nbreak | z")]
    html = _render(approval_table(rows))
    assert "<a " not in html and "<img" not in html and "<strong" not in html, html
    assert html.count("<tr>") == 3  # the header and one row per action, no row injected
    header_cells = html.split("</tr>")[0].count("<th>")
    assert all(row.count("<td>") == header_cells for row in html.split("</tr>")[1:-1])
    assert "APPROVE_ALL_HERE" in html  # shown, as text
