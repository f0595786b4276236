"""A small headless-Chromium driver for the dashboard tests (Chrome DevTools protocol).

Chromium talks the protocol over a pipe (`--remote-debugging-pipe`: commands on fd 3,
answers on fd 4, each message JSON ended by NUL), so no WebSocket client or driver binary is
needed. Networking is off (every host resolves to nothing): the page must work offline.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

SKIP_REASON = (
    "Chromium is not installed: `make browser` (Debian packages chromium and chromium-driver) "
    "enables the browser tests; CI installs them"
)


def chromium_binary() -> str | None:
    """The Chromium executable, or None (the tests then skip with a reason)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.skip(SKIP_REASON)
    return binary


class ProtocolError(RuntimeError):
    """Chromium answered a command with an error, or a page script threw."""


class Chromium:
    """One headless browser; `page()` opens a tab attached as a flat session."""

    def __init__(self, binary: str, profile: Path) -> None:
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()

        def wire_pipes() -> None:  # in the child, before exec: fds 3 and 4 are the pipes
            high_in, high_out = os.dup(commands_read), os.dup(answers_write)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-pipe", f"--user-data-dir={profile}",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-quic", "--host-resolver-rules=MAP * ~NOTFOUND",
             "--hide-scrollbars", "--mute-audio", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire_pipes, close_fds=False,  # fds 3 and 4 stay open (dup2)
        )
        os.close(commands_read)
        os.close(answers_write)
        self._next = 0
        self._lock = threading.Lock()
        self._replies: dict[int, dict[str, Any]] = {}
        self._ready = threading.Condition()
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = os.read(self._answers, 1 << 16)
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                with self._ready:
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self.events.append(message)
                    self._ready.notify_all()

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 60) -> dict[str, Any]:
        with self._lock:
            self._next += 1
            number = self._next
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._ready:
            while number not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{method}: no answer in {timeout}s")
                self._ready.wait(left)
            reply = self._replies.pop(number)
        if "error" in reply:
            raise ProtocolError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def page(self, width: int, height: int = 900) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        page = Page(self, session, target)
        page.send("Runtime.enable")
        page.send("Page.enable")
        page.resize(width, height)
        return page

    def close(self) -> None:
        with suppress(OSError, TimeoutError, ProtocolError):
            self.send("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)


class Page:
    """A tab: navigate, evaluate JavaScript (promises awaited), screenshot, download."""

    def __init__(self, browser: Chromium, session: str, target: str) -> None:
        self.browser = browser
        self.session = session
        self.target = target
        self.width = 0

    def send(self, method: str, params: dict[str, Any] | None = None,
             timeout: float = 60) -> dict[str, Any]:
        return self.browser.send(method, params, self.session, timeout)

    def resize(self, width: int, height: int = 900) -> None:
        self.width = width
        self.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'")

    def js(self, expression: str, timeout: float = 60) -> Any:
        """The value of `expression` (a promise is awaited), or ProtocolError if it threw."""
        result = self.send("Runtime.evaluate", {
            "expression": expression, "awaitPromise": True, "returnByValue": True,
            "userGesture": True,
            "timeout": int(timeout * 1000)}, timeout=timeout + 5)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ProtocolError(f"{expression[:80]}: {text}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """Click the element as a person does: a real mouse press and release at its centre
        (Chromium input events, not a script's `.click()`), scrolled into view first."""
        x, y = self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
            "return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {
                "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout}s: {expression}")
            time.sleep(0.1)

    def console_errors(self) -> list[str]:
        """Uncaught exceptions and console.error messages of this tab so far."""
        errors = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                errors.append(details.get("exception", {}).get("description")
                              or details.get("text", "exception"))
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") == "error":
                errors.append(" ".join(str(a.get("value", a.get("description")))
                                       for a in params.get("args", [])))
        return errors

    def screenshot(self, path: Path, top: int = 0, height: int | None = None) -> Path:
        """The whole page (not just the viewport), or `height` px from `top`, as a PNG."""
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        if height is None:
            height = min(int(size["height"]) + 1, 16000) - top
        data = self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": top, "width": self.width, "height": height, "scale": 1}},
            timeout=120)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def downloads_to(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.browser.send("Browser.setDownloadBehavior", {
            "behavior": "allow", "downloadPath": str(folder), "eventsEnabled": True})

    def download_events(self) -> list[str]:
        """What Chromium said of the downloads so far (began, and each state it reached): the
        account a test gives when a file does not arrive."""
        said = []
        for event in list(self.browser.events):
            params = event.get("params", {})
            if event.get("method") == "Browser.downloadWillBegin":
                said.append(f"began {params.get('suggestedFilename')} ({params.get('guid')})")
            elif event.get("method") == "Browser.downloadProgress" and params.get("state") != (
                    "inProgress"):
                said.append(f"{params.get('state')} {params.get('guid')}")
        return said

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})


def wait_for_file(folder: Path, suffix: str, timeout: float = 120,
                  page: Page | None = None) -> Path:
    """The one finished download ending in `suffix` in `folder`. The wait is long: CI runs
    this beside Spark's JVMs on two cores, where a download once took longer than 45 s or never
    came; the error then says what Chromium reported of its downloads (`page`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        present = list(folder.iterdir()) if folder.is_dir() else []
        done = [p for p in present if p.name.endswith(suffix)]
        if done and not any(p.name.endswith(".crdownload") for p in present):
            return done[0]
        time.sleep(0.1)
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else "folder gone"
    account = page.download_events()[-6:] if page else []
    raise TimeoutError(f"no *{suffix} downloaded into {folder} in {timeout:.0f}s; "
                       f"there: {present}; Chromium's last download events: {account}")


@contextmanager
def chromium(profile: Path) -> Iterator[Chromium]:
    browser = Chromium(require_chromium(), profile)
    try:
        yield browser
    finally:
        browser.close()
