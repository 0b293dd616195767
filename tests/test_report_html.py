"""report.html: self-contained, renders in headless Chromium with no console output, shows the numbers.

``render`` and ``elements`` are shared with the end-to-end report test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from oafin.reporting.html_report import MAX_ROWS, render_html, write_html_report
from tests.test_report_context import CARD, PHONE, RESIDENT_ID, exception_rows, report_data

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def render(page: Path, tmp: Path, *extra: str) -> tuple[str, list[str]]:
    """Load ``page`` in headless Chromium: the DOM after scripts ran, and every console message.

    Chromium logs each console message (log, error, uncaught exception, CSP violation) to stderr
    as ``INFO:CONSOLE`` lines when started with ``--enable-logging=stderr --v=0``.
    """
    action = list(extra) if any(e.startswith("--screenshot") for e in extra) else ["--dump-dom", *extra]
    profile = f"--user-data-dir={tmp / 'chrome-profile'}"
    cmd = [CHROMIUM, *CHROME_FLAGS, profile, *action, page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


class _Collector(HTMLParser):
    VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str], list[str]]] = []
        self.found: list[tuple[str, dict[str, str], str]] = []

    def handle_starttag(self, tag, attrs):
        entry = (tag, {k: v or "" for k, v in attrs}, [])
        if tag in self.VOID:
            self.found.append((tag, entry[1], ""))
        else:
            self.stack.append(entry)

    def handle_endtag(self, tag):
        while self.stack:
            t, attrs, parts = self.stack.pop()
            text = "".join(parts)
            self.found.append((t, attrs, text))
            if self.stack:
                self.stack[-1][2].append(text)
            if t == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2].append(data)


def elements(html: str) -> list[tuple[str, dict[str, str], str]]:
    """Every element as (tag, attributes, text content), in closing order."""
    parser = _Collector()
    parser.feed(html)
    parser.close()
    return parser.found


def test_page_is_self_contained_and_escaped():
    html = render_html(report_data())
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    # nothing is fetched: no src/href/url() to another host (links to sibling files are navigation)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "url(" not in html and "@import" not in html
    assert "<script>alert(1)" not in html  # the detail text cannot close the JSON script element
    for secret in (CARD, PHONE, RESIDENT_ID):
        assert secret not in html


def test_big_periods_embed_a_bounded_list(tmp_path):
    many = exception_rows().sample(n=MAX_ROWS + 700, replace=True, random_state=1)
    many["exception_id"] = [f"x{i}" for i in range(len(many))]
    html = render_html(report_data(many))
    assert f"the first {MAX_ROWS} of {MAX_ROWS + 700} in the order to act on them" in html
    counts = {a["data-type"]: int(a["data-count"]) for _, a, _ in elements(html) if "data-type" in a}
    assert sum(counts.values()) == MAX_ROWS + 700  # the summaries still cover every exception


def test_renders_in_chromium_without_console_output_and_shows_the_numbers(tmp_path):
    data = report_data()
    page = write_html_report(data, tmp_path / "report.html")
    dom, console = render(page, tmp_path)
    assert console == []
    found = elements(dom)
    kpis = {a["data-kpi"]: text for _, a, text in found if "data-kpi" in a}
    assert "66.7%" in kpis["auto_match_rate"]
    assert "¥1,364.06" in kpis["risk_fen"]  # 123456 + 250 (owed) + 5000 (unapproved) + 7700 fen
    assert "¥0.00" in kpis["risk_paid_out_fen"]  # nothing here was paid out wrongly
    assert kpis["control_findings"].startswith("1Control")  # the unmapped code: a finding, no money
    assert "2.0 d" in kpis["cycle_median_days"] and "3.6 d" in kpis["cycle_p90_days"]
    assert "¥437.50" in kpis["matched_fen"]
    body_rows = [a for t, a, _ in found if t == "tr"]
    assert len(body_rows) > 5
    # the script drew the exception list (page 1 of 1, 5 rows), largest amount first
    cells = [text for t, a, text in found if t == "td"]
    assert "page 1 of 1 · 5 rows" in dom
    # in the order to act on: unapproved money (MISSING_IN_OA) before money owed, larger first
    assert cells.index("¥50.00") < cells.index("¥1,234.56") < cells.index("¥77.00")


def test_the_console_check_catches_a_broken_page(tmp_path):
    """The check above can fail: an uncaught error and a blocked fetch both show as console lines."""
    html = render_html(report_data()).replace("draw();\n}());", "draw(); undefinedFunction();\n}());")
    html = html.replace("</body>", '<img src="http://127.0.0.1:9/x.png"></body>')
    page = tmp_path / "broken.html"
    page.write_text(html, encoding="utf-8")
    _dom, console = render(page, tmp_path)
    assert any("undefinedFunction" in line for line in console)
    assert any("Content Security Policy" in line for line in console)


@pytest.mark.parametrize("size", ["1280,2000"])
def test_screenshot_is_written(tmp_path, size):
    """The page also renders to an image (what the issue's note describes was looked at this way)."""
    page = write_html_report(report_data(), tmp_path / "report.html")
    shot = tmp_path / "report.png"
    _dom, console = render(page, tmp_path, f"--screenshot={shot}", f"--window-size={size}")
    assert console == []
    assert shot.stat().st_size > 20_000


MEASURE = """<script>
window.addEventListener("load", function () {
  var bad = [];
  document.querySelectorAll(".kpi").forEach(function (card) {
    var v = card.querySelector(".v"), c = card.getBoundingClientRect(), r = v.getBoundingClientRect();
    if (v.scrollWidth > v.clientWidth + 1 || r.right > c.right + 0.5) { bad.push(card.dataset.kpi); }
  });
  document.body.setAttribute("data-overflow", bad.join(","));
});
</script></body>"""


@pytest.mark.parametrize("size", ["1280,2000", "1920,2000"])
def test_kpi_amounts_stay_inside_their_cards(tmp_path, size):
    """Issue 11: the money KPI overflowed its card at 1280 and 1920 wide (a group's yearly figures)."""
    big = exception_rows()
    big.loc[big["exception_id"] == "e4", "amount_fen"] = 98_765_432_109_876  # ¥987,654,321,098.76
    big.loc[big["exception_id"] == "e2", "amount_fen"] = 12_345_678_901_234
    page = tmp_path / "report.html"
    page.write_text(render_html(report_data(big)).replace("</body>", MEASURE), encoding="utf-8")
    dom, console = render(page, tmp_path, f"--window-size={size}")
    assert console == []
    overflow = re.search(r'data-overflow="([^"]*)"', dom)
    assert overflow is not None and overflow.group(1) == "", overflow
