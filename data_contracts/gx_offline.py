"""Great Expectations Data Docs that render offline (company networks in China often reach no CDN).

GX's page templates load Bootstrap, jQuery, bootstrap-table, the date picker, Font Awesome and
Vega from public CDNs, and its logo from S3: offline the pages are unstyled and the index's table
(drawn by bootstrap-table) is empty. ``make_offline`` copies the same files, vendored from the npm
registry into ``data_contracts/gx_assets/`` (``python -m data_contracts.gx_offline`` refreshes
them), into the site's ``static/vendor/`` and rewrites every page to load them by relative path;
an asset URL it does not know is removed rather than left to be fetched.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Final

ASSETS = Path(__file__).with_name("gx_assets")

# npm package@version -> files taken from its tarball (``package/`` prefix left out)
PACKAGES: Final[dict[str, tuple[str, ...]]] = {
    "bootstrap@4.3.1": ("dist/css/bootstrap.min.css", "dist/js/bootstrap.min.js"),
    "bootstrap-table@1.19.1": (
        "dist/bootstrap-table.min.css",
        "dist/bootstrap-table.min.js",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    "bootstrap-datepicker@1.9.0": (
        "dist/css/bootstrap-datepicker.min.css",
        "dist/js/bootstrap-datepicker.min.js",
    ),
    "@forevolve/bootstrap-dark@1.1.0": ("dist/css/bootstrap-prefers-dark.min.css",),
    "jquery@3.7.1": ("dist/jquery.min.js",),
    "popper.js@1.12.9": ("dist/umd/popper.min.js",),
    "@fortawesome/fontawesome-free@6.6.0": (
        "css/all.min.css",
        "webfonts/fa-brands-400.woff2",
        "webfonts/fa-regular-400.woff2",
        "webfonts/fa-solid-900.woff2",
        "webfonts/fa-v4compatibility.woff2",
    ),
    "vega@5.33.1": ("build/vega.min.js",),
    "vega-lite@5.23.0": ("build/vega-lite.min.js",),
    "vega-embed@6.29.0": ("build/vega-embed.min.js",),
}


def _local(package: str, file: str) -> str:
    return f"{package.rsplit('@', 1)[0].lstrip('@').replace('/', '-')}/{file}"


# CDN URL (as GX 1.x templates write it) -> the vendored file, relative to ``ASSETS``
URLS: Final[dict[str, str]] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": _local(
        "bootstrap@4.3.1", "dist/css/bootstrap.min.css"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": _local(
        "bootstrap@4.3.1", "dist/js/bootstrap.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": _local(
        "bootstrap-table@1.19.1", "dist/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": _local(
        "bootstrap-table@1.19.1", "dist/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": _local(
        "bootstrap-table@1.19.1", "dist/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    # GX also links the 1.19.0 filter-control stylesheet: the 1.19.1 one serves it
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": _local(
        "bootstrap-table@1.19.1", "dist/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": _local(
        "bootstrap-table@1.19.1", "dist/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": _local(
        "bootstrap-datepicker@1.9.0", "dist/css/bootstrap-datepicker.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": _local(
        "bootstrap-datepicker@1.9.0", "dist/js/bootstrap-datepicker.min.js"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": _local(
        "@forevolve/bootstrap-dark@1.1.0", "dist/css/bootstrap-prefers-dark.min.css"
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": _local("jquery@3.7.1", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": _local(
        "popper.js@1.12.9", "dist/umd/popper.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": _local(
        "@fortawesome/fontawesome-free@6.6.0", "css/all.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/vega@5": _local("vega@5.33.1", "build/vega.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": _local("vega-lite@5.23.0", "build/vega-lite.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": _local("vega-embed@6.29.0", "build/vega-embed.min.js"),
}
VENDOR_DIR = "static/vendor"
LOGO = "static/images/logo-long.png"  # shipped by GX inside every site

_S3_LOGO = re.compile(r"https://great-expectations-web-assets\.s3[^'\"\s)]*")
_SRI = re.compile(r"""\s+(?:integrity|crossorigin)\s*=\s*(?:"[^"]*"|'[^']*')""")
# what a browser would fetch by itself: src=, <link href=, CSS url()
ASSET_URL = re.compile(
    r"""(?:\bsrc\s*=\s*["']?|<link\b[^>]*?\bhref\s*=\s*["']?|url\(\s*["']?)(https?:)?//""", re.IGNORECASE
)


def _relative(page: Path, site: Path, target: str) -> str:
    depth = len(page.relative_to(site).parts) - 1
    return "../" * depth + target if depth else "./" + target


def _rewrite(html: str, page: Path, site: Path) -> str:
    for url, local in URLS.items():
        if url not in html:
            continue
        rel = _relative(page, site, f"{VENDOR_DIR}/{local}")
        # drop SRI/crossorigin on the tags that load it: a file:// load with them is blocked
        html = re.sub(
            r"<(script|link)\b[^>]*" + re.escape(url) + r"[^>]*>",
            lambda m, url=url, rel=rel: _SRI.sub("", m.group(0)).replace(url, rel),  # type: ignore[misc]  # defaults bind the loop's values
            html,
        )
        html = html.replace(url, rel)
    html = _S3_LOGO.sub(_relative(page, site, LOGO), html)
    # anything else a browser would fetch from the network: dropped, never fetched
    html = re.sub(r"<script\b[^>]*\bsrc\s*=\s*[\"']?https?://[^>]*>\s*</script>", "", html, flags=re.I)
    html = re.sub(r"<link\b[^>]*\bhref\s*=\s*[\"']?https?://[^>]*>", "", html, flags=re.I)
    html = re.sub(r"(\bsrc\s*=\s*[\"'])https?://[^\"']*", r"\1data:,", html, flags=re.I)
    return re.sub(r"url\(\s*([\"']?)https?://[^)\"']*\1\s*\)", "none", html, flags=re.I)


def make_offline(site: Path) -> int:
    """Vendor the assets into ``site`` and rewrite its pages; returns the number of pages rewritten."""
    target = site / VENDOR_DIR
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(ASSETS, target, ignore=shutil.ignore_patterns("*.py", "__pycache__", "README*"))
    n = 0
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        new = _rewrite(text, page, site)
        if new != text:
            page.write_text(new, encoding="utf-8")
            n += 1
    return n


def vendor(dest: Path = ASSETS) -> None:
    """Refresh ``gx_assets/`` from the npm registry (``npm pack``); run by a developer, not by runs."""
    with tempfile.TemporaryDirectory() as tmp:
        for package, files in PACKAGES.items():
            out = subprocess.run(
                ["npm", "pack", package, "--silent"], cwd=tmp, check=True, capture_output=True, text=True
            )
            with tarfile.open(Path(tmp) / out.stdout.strip().splitlines()[-1]) as tar:
                names = set(tar.getnames())
                licences = [
                    n[len("package/") :] for n in ("package/LICENSE", "package/LICENSE.txt") if n in names
                ]
                for file in (*files, *licences):
                    member = tar.extractfile(f"package/{file}")
                    if member is None:
                        raise FileNotFoundError(f"{package}: {file}")
                    path = dest / _local(package, file)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(member.read())


if __name__ == "__main__":
    vendor()
    print(f"vendored {sum(len(f) for f in PACKAGES.values())} files into {ASSETS}", file=sys.stderr)
