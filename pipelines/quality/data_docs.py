"""GX Data Docs that work offline: every script, stylesheet, font and image is on disk.

GX 1.24's page templates load jQuery, Bootstrap 4.3.1, bootstrap-table, bootstrap-datepicker,
bootstrap-dark, Font Awesome and vega from CDNs, and the logo from GX's S3 bucket. Offline
(an auditor's laptop, an air-gapped share) the pages stay blank: the index table and the
validation tables are drawn by jQuery/bootstrap-table. GX's custom views cannot replace its
templates (its own template loader comes first), so after `build_data_docs()`
`make_site_offline` copies the vendored files beside the site (`<site>/static/vendor/`) and
rewrites each page's CDN tags to relative paths of those copies.

The vendored files are committed in `expectations/data_docs_assets/`, pinned in `VENDORED`
(npm package, version, path in the package) with the CDN URLs each stands in for in
`CDN_REPLACEMENTS`; `manifest.json` there records each file's sha256 and its package
tarball's registry integrity. `make data-docs-assets` (`python -m pipelines.quality.data_docs
vendor`) fetches them again from the npm registry with `npm pack`, reproducibly; runs never
touch the network, and a run refuses files that differ from the manifest.

Left out on purpose: vega, vega-lite and vega-embed (GX draws charts only for
`expect_column_kl_divergence_to_be_less_than` and `expect_column_distinct_values_to_be_in_set`,
which no suite uses; a page that draws one is refused, so nobody gets a silently empty chart),
and Font Awesome's brands/regular styles (the pages only use two solid icons).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.settings import PROJECT_ROOT

ASSETS_DIR = PROJECT_ROOT / "expectations" / "data_docs_assets"
MANIFEST = ASSETS_DIR / "manifest.json"
SITE_VENDOR_DIR = Path("static") / "vendor"  # inside the Data Docs site


@dataclass(frozen=True)
class VendoredFile:
    package: str  # npm package name
    version: str  # exact version
    path: str  # path inside the package

    @property
    def relative(self) -> str:
        """Where it lives under `ASSETS_DIR` and under the site's `static/vendor/`."""
        return f"{self.package}@{self.version}/{self.path}"


JQUERY = VendoredFile("jquery", "3.7.1", "dist/jquery.min.js")
POPPER = VendoredFile("popper.js", "1.12.9", "dist/umd/popper.min.js")
BOOTSTRAP_CSS = VendoredFile("bootstrap", "4.3.1", "dist/css/bootstrap.min.css")
BOOTSTRAP_JS = VendoredFile("bootstrap", "4.3.1", "dist/js/bootstrap.min.js")
TABLE_CSS = VendoredFile("bootstrap-table", "1.19.1", "dist/bootstrap-table.min.css")
TABLE_JS = VendoredFile("bootstrap-table", "1.19.1", "dist/bootstrap-table.min.js")
FILTER_CSS = VendoredFile(
    "bootstrap-table", "1.19.1",
    "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
)
FILTER_JS = VendoredFile(
    "bootstrap-table", "1.19.1",
    "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
)
DATEPICKER_CSS = VendoredFile(
    "bootstrap-datepicker", "1.9.0", "dist/css/bootstrap-datepicker.min.css"
)
DATEPICKER_JS = VendoredFile("bootstrap-datepicker", "1.9.0", "dist/js/bootstrap-datepicker.min.js")
DARK_CSS = VendoredFile(
    "@forevolve/bootstrap-dark", "1.1.0", "dist/css/bootstrap-prefers-dark.min.css"
)
FA = ("@fortawesome/fontawesome-free", "6.6.0")
FA_CORE_CSS = VendoredFile(*FA, "css/fontawesome.min.css")
FA_SOLID_CSS = VendoredFile(*FA, "css/solid.min.css")
# the two fonts solid.min.css refers to (url(../webfonts/...)): browsers take the woff2
FA_SOLID_FONTS = (
    VendoredFile(*FA, "webfonts/fa-solid-900.woff2"),
    VendoredFile(*FA, "webfonts/fa-solid-900.ttf"),
)

# Each CDN URL of GX 1.24's templates, and the vendored files that replace it, in order.
# Where GX names two versions of one file (bootstrap-table's filter-control CSS is 1.19.0,
# its scripts 1.19.1), the version of the scripts is used.
CDN_REPLACEMENTS: dict[str, tuple[VendoredFile, ...]] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": (JQUERY,),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (POPPER,),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (BOOTSTRAP_CSS,),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (BOOTSTRAP_JS,),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (TABLE_CSS,),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (TABLE_JS,),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": (FILTER_CSS,),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": (FILTER_CSS,),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": (FILTER_JS,),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": (DATEPICKER_CSS,),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": (DATEPICKER_JS,),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": (DARK_CSS,),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        FA_CORE_CSS, FA_SOLID_CSS,
    ),
    # charts only (see the module's docstring): dropped
    "https://cdn.jsdelivr.net/npm/vega@5": (),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": (),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": (),
}

VENDORED: tuple[VendoredFile, ...] = tuple(
    dict.fromkeys([f for files in CDN_REPLACEMENTS.values() for f in files] + [*FA_SOLID_FONTS])
)

# GX's logo comes from its S3 bucket (with a `?d=<time>` suffix); GX copies its own images into
# `<site>/static/images/`. The dark-mode logo is not among them: the light one stands in.
GX_IMAGES = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/"
    r"(?P<name>logo-long\.png|full_logo_dark\.png)(?:\?[^\"')\s]*)?"
)
GX_IMAGE_FILES = {"logo-long.png": "logo-long.png", "full_logo_dark.png": "logo-long.png"}
# GX 1.24 points a validation page's favicon one directory too high (favicon.j2 counts 3 levels,
# the page is 4 deep): each page gets the path from where it really is.
_FAVICON = re.compile(r"(?<=href=\")(?:\.\./|\./)*static/images/favicon\.ico(?=\")")

_LINK = re.compile(r"<link\b[^>]*?\bhref=\"(?P<url>https?://[^\"]+)\"[^>]*>", re.IGNORECASE)
_SCRIPT = re.compile(
    r"<script\b[^>]*?\bsrc=\"(?P<url>https?://[^\"]+)\"[^>]*>\s*</script>", re.IGNORECASE
)
# What a browser would load by itself: script/img/iframe sources, stylesheets and CSS url().
# Links a reader may click (<a href>) are not loads.
_REMOTE_LOADS = re.compile(
    r"<(?:script|img|iframe|source|embed)\b[^>]*?\bsrc=\"(?:https?:)?//[^\"]*\""
    r"|<link\b[^>]*?\bhref=\"(?:https?:)?//[^\"]*\""
    r"|url\(\s*['\"]?(?:https?:)?//[^)]*\)"
    r"|@import\s+['\"](?:https?:)?//",
    re.IGNORECASE,
)


class DataDocsAssetError(RuntimeError):
    """The Data Docs would need the network, or a vendored file is not the pinned one."""


OFFLINE_MARK = ".offline"  # touched in the site when every page in it was made offline
# touched in the site when every validation page in it was drawn with data as text
# (pipelines/quality/gx_duckdb.py `DataAsTextValidationResultsPageRenderer`): a site without it
# has its kept results' pages drawn again, once (pages written before data was escaped)
DATA_AS_TEXT_MARK = ".data_as_text"


def make_site_offline(site_dir: Path, since_last: bool = False) -> list[Path]:
    """Copy the vendored assets into `site_dir` and point every page at them — with
    `since_last`, only the pages written since the site was last made offline (its
    OFFLINE_MARK; every page when there is none): a page GX wrote but a stopped run never made
    offline is taken up by the next run, and the pages of earlier runs are not read again.

    Idempotent: pages rewritten before have nothing left to rewrite. Returns the pages that
    changed. Raises `DataDocsAssetError` when a page still loads anything from the network
    afterwards (a GX template with a URL not in `CDN_REPLACEMENTS`) or draws a chart.
    """
    site_dir = Path(site_dir)
    mark = site_dir / OFFLINE_MARK
    since = mark.stat().st_mtime_ns if since_last and mark.is_file() else None
    copy_assets(site_dir / SITE_VENDOR_DIR)
    changed, problems = [], []
    for page in sorted(site_dir.rglob("*.html")):
        if since is not None and page.stat().st_mtime_ns < since:
            continue
        text = page.read_text(encoding="utf-8")
        new = rewrite_page(text, page.parent, site_dir)
        if new != text:
            page.write_text(new, encoding="utf-8")
            changed.append(page)
        problems += [f"{page.relative_to(site_dir)}: {p}" for p in remote_loads(new)]
        if "vegaEmbed(" in new:
            problems.append(
                f"{page.relative_to(site_dir)}: draws a vega chart, and vega is not vendored "
                "(add vega, vega-lite and vega-embed to CDN_REPLACEMENTS)"
            )
    if problems:
        raise DataDocsAssetError(
            "Data Docs would load from the network: " + "; ".join(problems[:10])
        )
    mark.touch()
    return changed


def rewrite_page(text: str, page_dir: Path, site_dir: Path) -> str:
    """`text` with GX's CDN tags replaced by tags for the vendored copies under `site_dir`."""
    vendor = site_dir / SITE_VENDOR_DIR

    def local(path: Path) -> str:
        return Path(os.path.relpath(path, page_dir)).as_posix()

    def link(match: re.Match[str]) -> str:
        files = CDN_REPLACEMENTS.get(match["url"])
        if files is None:
            return match[0]
        return "".join(
            f'<link rel="stylesheet" href="{local(vendor / f.relative)}">' for f in files
        )

    def script(match: re.Match[str]) -> str:
        files = CDN_REPLACEMENTS.get(match["url"])
        if files is None:
            return match[0]
        # no integrity/crossorigin: a crossorigin script from file:// is blocked as CORS
        return "".join(f'<script src="{local(vendor / f.relative)}"></script>' for f in files)

    def image(match: re.Match[str]) -> str:
        return local(site_dir / "static" / "images" / GX_IMAGE_FILES[match["name"]])

    text = GX_IMAGES.sub(image, _SCRIPT.sub(script, _LINK.sub(link, text)))
    return _FAVICON.sub(local(site_dir / "static" / "images" / "favicon.ico"), text)


def remote_loads(text: str) -> list[str]:
    """The tags and CSS `url()`s in `text` that would make a browser fetch from the network."""
    return [m[0][:200] for m in _REMOTE_LOADS.finditer(text)]


def copy_assets(target: Path) -> None:
    """Copy the vendored files to `target` (the site's `static/vendor/`), checked against the
    manifest."""
    expected = read_manifest()
    for file in VENDORED:
        source = ASSETS_DIR / file.relative
        data = source.read_bytes() if source.is_file() else b""
        if _sha256(data) != expected.get(file.relative):
            raise DataDocsAssetError(
                f"{source} is missing or differs from {MANIFEST.name}: `make data-docs-assets`"
            )
        destination = target / file.relative
        if destination.is_file() and destination.read_bytes() == data:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)


def read_manifest() -> dict[str, str]:
    """{relative path: sha256} of the vendored files, as recorded in the manifest."""
    if not MANIFEST.is_file():
        return {}
    entries = json.loads(MANIFEST.read_text(encoding="utf-8"))["files"]
    return {entry["file"]: entry["sha256"] for entry in entries}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- fetching the assets again (a developer's step, never a run's) ---------------------------


def vendor_assets(npm: str = "npm") -> Path:
    """Fetch `VENDORED` from the npm registry (`npm pack`, which checks each tarball against the
    registry's integrity) into `ASSETS_DIR`, and write the manifest. Same pins, same bytes."""
    packages = sorted({(f.package, f.version) for f in VENDORED})
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        packed = json.loads(subprocess.run(
            [npm, "pack", "--json", "--pack-destination", tmp,
             *[f"{name}@{version}" for name, version in packages]],
            capture_output=True, text=True, check=True, cwd=tmp,
        ).stdout)
        tarballs = {(p["name"], p["version"]): p for p in packed}
        if set(tarballs) != set(packages):
            raise DataDocsAssetError(f"npm pack returned {sorted(tarballs)}, not {packages}")
        if ASSETS_DIR.exists():
            for child in ASSETS_DIR.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
        for file in VENDORED:
            tarball = tarballs[(file.package, file.version)]
            with tarfile.open(Path(tmp) / tarball["filename"]) as archive:
                member = archive.extractfile(f"package/{file.path}")
                if member is None:
                    raise DataDocsAssetError(f"{file.relative} is not in {tarball['filename']}")
                data = member.read()
            destination = ASSETS_DIR / file.relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(data)
            entries.append({
                "file": file.relative,
                "package": f"{file.package}@{file.version}",
                "path_in_package": file.path,
                "sha256": _sha256(data),
                "bytes": len(data),
                "tarball": _tarball_url(file.package, file.version),
                "tarball_integrity": tarball["integrity"],
                "replaces": sorted(
                    url for url, files in CDN_REPLACEMENTS.items() if file in files
                ),
            })
    manifest = {
        "about": "Files the GX Data Docs need offline (pipelines/quality/data_docs.py). "
                 "Regenerate with `make data-docs-assets`; do not edit by hand.",
        "registry": "https://registry.npmjs.org/",
        "dropped": sorted(url for url, files in CDN_REPLACEMENTS.items() if not files),
        "files": entries,
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return MANIFEST


def _tarball_url(package: str, version: str) -> str:
    return f"https://registry.npmjs.org/{package}/-/{package.split('/')[-1]}-{version}.tgz"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["vendor"]:
        print("usage: python -m pipelines.quality.data_docs vendor", file=sys.stderr)
        return 2
    print(f"wrote {vendor_assets()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
