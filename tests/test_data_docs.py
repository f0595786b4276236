"""The GX Data Docs open offline, from disk, list every run, and name what failed.

The vendoring is checked without a run (pins, manifest, GX's own templates). Two nightly runs
of one tiny generated sample into one warehouse (module fixture) give a real site; a headless
Chromium opens its index and the label-agreement page with the network switched off
(DevTools offline emulation, and a proxy on a closed port for anything that slips through)
and reports every request it made.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import great_expectations
import pytest

from pipelines.job_runner import run_nightly_job
from pipelines.quality.checks import CHECKS
from pipelines.quality.data_docs import (
    ASSETS_DIR,
    CDN_REPLACEMENTS,
    GX_IMAGES,
    MANIFEST,
    VENDORED,
    read_manifest,
    remote_loads,
)
from pipelines.settings import Settings

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
GX_VIEW = Path(great_expectations.__file__).parent / "render" / "view"
MISLABELLERS = {"USR-0005", "USR-0011"}  # the sample's careless labellers


# --- the vendored files ---------------------------------------------------------------------


def test_vendored_files_are_the_pinned_ones_and_match_the_manifest() -> None:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert [e["file"] for e in manifest["files"]] == [f.relative for f in VENDORED]
    for entry, file in zip(manifest["files"], VENDORED, strict=True):
        assert entry["package"] == f"{file.package}@{file.version}"
        assert entry["tarball"].startswith("https://registry.npmjs.org/")
        assert entry["tarball_integrity"].startswith("sha512-")
    on_disk = {
        p.relative_to(ASSETS_DIR).as_posix() for p in ASSETS_DIR.rglob("*") if p.is_file()
    }
    assert on_disk == set(read_manifest()) | {MANIFEST.name}  # nothing more, nothing less
    for relative, sha256 in read_manifest().items():
        assert hashlib.sha256((ASSETS_DIR / relative).read_bytes()).hexdigest() == sha256


def test_vendored_stylesheets_refer_only_to_vendored_files() -> None:
    vendored = {f.relative for f in VENDORED}
    for file in VENDORED:
        if not file.path.endswith(".css"):
            continue
        css = (ASSETS_DIR / file.relative).read_text(encoding="utf-8")
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", css):
            if url.startswith("data:"):
                continue
            target = os.path.normpath(Path(file.relative).parent / url.split("?")[0])
            assert Path(target).as_posix() in vendored, f"{file.relative} needs {url}"
        assert not remote_loads(css), file.relative


def test_every_remote_url_of_gx_templates_has_a_local_replacement() -> None:
    """A GX upgrade that changes a CDN URL fails here, not on an auditor's laptop."""
    sources = [*GX_VIEW.glob("templates/*.j2"), *GX_VIEW.glob("static/styles/*.css")]
    found = set()
    for source in sources:
        text = source.read_text(encoding="utf-8")
        found |= set(re.findall(r"(?:src|href)=\"(https?://[^\"{]+)\"", text))
        found |= set(re.findall(r"url\(\s*'(https?://[^']+)'", text))
        found |= {
            m for m in re.findall(r"\"(https?://[^\"]+/)\"", text)
            if "great-expectations-web-assets" in m
        }
    navigation = {u for u in found if "greatexpectations.io" in u}  # links, not loads
    loads = found - navigation
    assert loads, "no CDN URL found: GX's templates moved?"
    unreplaced = {u for u in loads if u not in CDN_REPLACEMENTS and not GX_IMAGES.match(u)}
    # the S3 base of top_navbar.j2 is completed with the logo's name
    unreplaced.discard("https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/")
    assert not unreplaced
    assert set(CDN_REPLACEMENTS) <= loads  # and nothing stale is kept


# --- a real site: two runs on one warehouse -------------------------------------------------


@dataclass(frozen=True)
class Site:
    docs: Path
    run_ids: list[str]
    names: dict[str, str]  # user_id -> full_name of the flagged labellers
    first_pages: dict[str, int]  # page (relative to docs) -> its mtime_ns before the second run
    lost: str  # a first-run page deleted before the second run
    left_online: str  # a first-run page rewritten to load jQuery from its CDN, as GX writes it


# What a run stopped between GX's build and the offline rewrite leaves in a page.
JQUERY_CDN = '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'


def _page_times(docs: Path) -> dict[str, int]:
    return {str(p.relative_to(docs)): p.stat().st_mtime_ns for p in docs.rglob("*.html")}


@pytest.fixture(scope="module")
def site(labelled_sample_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Site:
    """Two runs on one warehouse: the session's labelled run (the sample at scale 0.05, whose
    careless labellers label 14 contacts each, judged from 10 on), and a second one on a copy
    of its warehouse, over the same extracts with the same settings — resumed from the
    labelled run's complete build (the checks, the publication: what the Data Docs come
    from; the build would be the same tables again)."""
    warehouse = tmp_path_factory.mktemp("data_docs") / "warehouse"
    shutil.copytree(labelled_sample_warehouse, warehouse, symlinks=True)
    with duckdb.connect(str(warehouse / "marts.duckdb"), read_only=True) as con:
        run_ids = [run_id for (run_id,) in con.execute("select run_id from runs").fetchall()]
        (settings_json,) = con.execute("select settings from runs").fetchone()
    assert len(run_ids) == 1 and json.loads(settings_json)["min_labels_judged"] == 10
    extracts = labelled_sample_warehouse.parent / "extracts"
    settings = Settings(
        extracts_dir=extracts, warehouse_dir=warehouse, min_labels_judged=10, write_site=False
    )
    docs = warehouse / "quality" / "data_docs"
    first_pages = _page_times(docs)  # copied with their times
    # the labelled run's pages of two checks: one lost, one as a stopped run would leave it
    lost = _only(docs.glob(f"validations/fx_rate_gaps/{run_ids[0]}/*/*.html"))
    left_online = _only(docs.glob(f"validations/kpi_sanity/{run_ids[0]}/*/*.html"))
    lost.unlink()
    page = left_online.read_text(encoding="utf-8")
    left_online.write_text(page.replace("</head>", JQUERY_CDN + "</head>", 1), encoding="utf-8")
    outcome = run_nightly_job(settings, log_level="WARNING", resume=True)
    assert outcome.success, outcome.failures
    run_ids.append(outcome.run_id)
    with duckdb.connect(str(warehouse / "marts.duckdb"), read_only=True) as con:
        names = dict(con.execute(
            "select user_id, full_name from dim_reps where user_id in ('"
            + "', '".join(sorted(MISLABELLERS)) + "')"
        ).fetchall())
    return Site(docs, run_ids, names, first_pages, *(
        str(page.relative_to(docs)) for page in (lost, left_online)))


def _only(pages: Iterator[Path]) -> Path:
    (page,) = pages
    return page


def _label_page(site: Site, run_id: str) -> Path:
    pages = list((site.docs / "validations" / "label_agreement" / run_id).glob("*/*.html"))
    assert len(pages) == 1, pages
    return pages[0]


def test_the_index_lists_every_runs_validations(site: Site) -> None:
    index = (site.docs / "index.html").read_text(encoding="utf-8")
    for run_id in site.run_ids:
        for check in CHECKS:
            assert f"validations/{check.name}/{run_id}/" in index, (check.name, run_id)


def test_a_run_writes_its_own_pages_and_leaves_the_earlier_runs_pages_as_they_were(
    site: Site,
) -> None:
    """Data Docs grow by one run's pages a night: the second run wrote its validation pages
    and the index (and the suites' pages); the first run's validation pages are the files it
    left, not rendered again (a night's Data Docs do not cost more pages as nights are kept)."""
    now = _page_times(site.docs)
    first, second = ([page for page in now if f"/{run_id}/" in page] for run_id in site.run_ids)
    assert len(first) == len(second) == len(CHECKS)
    untouched = [page for page in first if page not in (site.lost, site.left_online)]
    assert {page: now[page] for page in untouched} == {
        page: site.first_pages[page] for page in untouched}
    assert all(page not in site.first_pages for page in second)
    assert now["index.html"] != site.first_pages["index.html"]


def test_a_kept_result_without_a_page_gets_it_at_the_next_run(site: Site) -> None:
    """A page lost (or never written: a run stopped before its Data Docs) is written again by
    the next run, from the kept result; the index links it."""
    assert (site.docs / site.lost).is_file()
    assert site.lost in (site.docs / "index.html").read_text(encoding="utf-8")


def test_a_page_a_stopped_run_left_loading_from_the_network_is_made_offline_next(
    site: Site,
) -> None:
    """A page written after the site was last made offline (GX's own, loading its scripts from
    CDNs, as a run stopped between the two steps leaves it) is made offline by the next run,
    though that run did not write it."""
    page = (site.docs / site.left_online).read_text(encoding="utf-8")
    assert "code.jquery.com" not in page and not remote_loads(page)


def test_no_page_loads_from_the_network_and_every_local_file_is_there(site: Site) -> None:
    pages = list(site.docs.rglob("*.html"))
    assert len(pages) == 1 + len(CHECKS) + 2 * len(CHECKS)  # index, suites, validations
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not remote_loads(text), page
        for ref in re.findall(r"<(?:script|img|link)\b[^>]*?\b(?:src|href)=\"([^\"#]+)\"", text):
            assert (page.parent / ref).resolve().is_file(), (page, ref)
        for ref in re.findall(r"url\('([^']+)'\)", text):
            assert (page.parent / ref).resolve().is_file(), (page, ref)


def test_the_label_check_names_the_flagged_labellers_in_results_and_page(site: Site) -> None:
    assert set(site.names) == MISLABELLERS
    run_id = site.run_ids[-1]
    results = list(
        (site.docs.parent / "validations" / "label_agreement" / run_id).glob("*/*.json")
    )
    result = json.loads(results[0].read_text(encoding="utf-8"))["results"][0]["result"]
    assert result["unexpected_index_column_names"] == ["labeller", "labeller_name"]
    assert {(r["labeller"], r["labeller_name"]) for r in result["unexpected_index_list"]} == set(
        site.names.items()
    )
    page = _label_page(site, run_id).read_text(encoding="utf-8")
    for user_id, name in site.names.items():
        assert user_id in page and name in page


# --- in a browser, offline ------------------------------------------------------------------


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class OfflineChromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4).

    The network is off twice over: DevTools' offline emulation fails every network request,
    and all traffic (loopback included) is sent to a proxy on a closed port. Every request the
    page makes is recorded.
    """

    FLAGS = (
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-domain-reliability", "--disable-client-side-phishing-detection",
        "--no-pings", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
        "--window-size=1400,1600", "--remote-debugging-pipe",
    )

    def __init__(self, binary: str, profile: Path) -> None:
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # out of the way of 3 and 4, where the child expects them
        to_chrome_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        from_chrome_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)

        def child_fds() -> None:
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.process = subprocess.Popen(
            [binary, *self.FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=child_fds, pass_fds=(3, 4),  # test-only: one thread
        )
        self.write, self.read_fd = to_chrome_w, from_chrome_r
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""

    def open(self) -> None:
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call(
            "Target.attachToTarget", targetId=page["targetId"], flatten=True
        )["sessionId"]
        for domain in ("Page.enable", "Network.enable", "Runtime.enable"):
            self.call(domain)
        self.call("Network.emulateNetworkConditions", offline=True, latency=0,
                  downloadThroughput=-1, uploadThroughput=-1)

    def call(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self.write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._receive(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def navigate(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]

    def failures(self) -> list[str]:
        failed = {e["params"]["requestId"]: e["params"]["errorText"] for e in self.events
                  if e.get("method") == "Network.loadingFailed"}
        urls = {e["params"]["requestId"]: e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"}
        return [f"{urls.get(rid, rid)}: {error}" for rid, error in failed.items()]

    def errors(self) -> list[str]:
        return [json.dumps(e["params"])[:500] for e in self.events
                if e.get("method") == "Runtime.exceptionThrown"
                or (e.get("method") == "Runtime.consoleAPICalled"
                    and e["params"].get("type") == "error")]

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.read_fd], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self.write, self.read_fd):
            os.close(fd)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfflineChromium]:
    binary = _chromium()
    if binary is None:
        pytest.skip(
            "Chromium is not installed: `make browser` (Debian packages chromium and "
            "chromium-driver) enables this test; CI installs them"
        )
    chromium = OfflineChromium(binary, tmp_path_factory.mktemp("chromium_profile"))
    try:
        chromium.open()
        yield chromium
    finally:
        chromium.close()


# What the page looks like once its scripts ran: jQuery and bootstrap-table loaded and drew
# their tables, Bootstrap's CSS is applied (a flex navbar, collapsed table borders: a browser's
# own defaults are block and separate), and Font Awesome's solid font is loaded for the icons.
PAGE_STATE = """
new Promise(done => setTimeout(done, 300)).then(() => document.fonts.ready).then(() => {
  const style = selector => {
    const element = document.querySelector(selector);
    return element ? getComputedStyle(element) : {};
  };
  return {
    jquery: typeof window.jQuery === 'function' && typeof jQuery.fn.bootstrapTable === 'function',
    drawn_tables: document.querySelectorAll('.bootstrap-table .fixed-table-body table').length,
    navbar_display: style('nav.navbar').display,
    table_borders: style('.bootstrap-table table').borderCollapse,
    icon_font: [...document.fonts].filter(
      f => f.family.includes('Font Awesome') && f.status === 'loaded').length,
    icons: document.querySelectorAll('i.fas').length,
    text: document.body.innerText,
  };
})
"""


def _assert_offline_and_styled(chromium: OfflineChromium, state: dict[str, Any]) -> None:
    remote = [u for u in chromium.requests() if not u.startswith(("file:", "data:"))]
    assert not remote, remote
    assert not chromium.failures(), chromium.failures()
    assert not chromium.errors(), chromium.errors()
    assert state["jquery"], state
    assert state["drawn_tables"] >= 1, state
    assert state["navbar_display"] == "flex", state
    assert state["table_borders"] == "collapse", state
    assert state["icons"] >= 1 and state["icon_font"] >= 1, state


def test_the_index_opens_offline_styled_with_both_runs(
    site: Site, browser: OfflineChromium
) -> None:
    browser.navigate((site.docs / "index.html").as_uri())
    state = browser.evaluate(PAGE_STATE)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(ARTIFACTS / "data-docs-index.png")
    _assert_offline_and_styled(browser, state)
    rows = browser.evaluate(
        "$('#section-1-content-block-2-1-body-table').bootstrapTable('getData', "
        "{useCurrentPage: false}).map(row => [row.run_name, row.asset_name])"
    )
    assert sorted(map(tuple, rows)) == sorted(
        (run_id, check.name) for run_id in site.run_ids for check in CHECKS
    )
    assert f"of {2 * len(CHECKS)} rows" in state["text"]


def test_the_label_page_opens_offline_and_names_the_flagged_labellers(
    site: Site, browser: OfflineChromium
) -> None:
    browser.navigate(_label_page(site, site.run_ids[-1]).as_uri())
    state = browser.evaluate(PAGE_STATE)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(ARTIFACTS / "data-docs-label-agreement.png")
    _assert_offline_and_styled(browser, state)
    assert "Failed" in state["text"]
    for user_id, name in site.names.items():
        assert user_id in state["text"] and name in state["text"], state["text"][-2000:]
