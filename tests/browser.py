"""Headless Chromium driven over the DevTools protocol on a pipe (no websocket, no driver).

`--remote-debugging-pipe` makes Chromium read NUL-separated JSON commands on fd 3 and
write replies and events on fd 4; a bash `exec` puts our pipe ends there (dash cannot
name fds above 9). Every request the browser's network stack makes also lands in a net
log, which covers workers too.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    # anything not on this machine fails to resolve instead of leaving it
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
INSTALL_HINT = (
    "Chromium is required for the site's browser tests: install Debian's package with "
    "`apt-get install -y chromium` (it brings chromium-common)"
)


def chromium() -> str:
    """The Chromium executable; a missing browser is a failure, not a skip (CI installs it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise AssertionError(INSTALL_HINT)
    return found


@dataclass
class PageVisit:
    url: str
    status: int | None = None
    svg_sizes: list[tuple[float, float]] = field(default_factory=list)
    title: str = ""
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    script: object = None


class Browser:
    def __init__(self, workdir: Path, *, width: int = 1280, height: int = 900) -> None:
        self.width, self.height = width, height
        self.netlog = workdir / "netlog.json"
        cmd_read, self._cmd_write = os.pipe()
        self._event_read, event_write = os.pipe()
        args = [
            *FLAGS,
            f"--user-data-dir={workdir / 'profile'}",
            f"--log-net-log={self.netlog}",
            f"--window-size={width},{height}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{cmd_read} 4>&{event_write}', chromium(), *args],
            pass_fds=(cmd_read, event_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "chromium.log").open("wb"),
        )
        os.close(cmd_read)
        os.close(event_write)
        self.log = workdir / "chromium.log"
        self._next_id = 0
        self._replies: dict[int, queue.Queue] = {}
        self.events: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._event_read, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._replies.setdefault(message["id"], queue.Queue()).put(message)
                    else:
                        self.events.put(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        reply_box = self._replies.setdefault(self._next_id, queue.Queue())
        os.write(self._cmd_write, json.dumps(message).encode() + b"\0")
        reply = reply_box.get(timeout=30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def visit(self, url: str, *, script: str = "", settle_s: float = 1.0) -> PageVisit:
        """Load a page in a fresh tab; collect errors, requests, SVG sizes and a screenshot.

        `script` runs after the load (before the probes); its value lands in `visit.script`.
        """
        visit = PageVisit(url)
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.send("Page.navigate", {"url": url}, session=session)
        loaded_at = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if loaded_at and time.monotonic() - loaded_at > settle_s:
                break
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if event.get("sessionId") != session:
                continue
            self._record(visit, event, url)
            if event["method"] == "Page.loadEventFired":
                loaded_at = time.monotonic()
        if loaded_at is None:
            raise AssertionError(f"{url}: the page did not finish loading in 30 s")
        if script:
            visit.script = self.send(
                "Runtime.evaluate", {"expression": script, "returnByValue": True}, session
            )["result"].get("value")
        probe = """JSON.stringify({
            title: document.title,
            svgs: [...document.querySelectorAll("article svg")].map(s => {
                const r = s.getBoundingClientRect(); return [r.width, r.height]; })})"""
        found = json.loads(
            self.send("Runtime.evaluate", {"expression": probe, "returnByValue": True}, session)[
                "result"
            ]["value"]
        )
        visit.title, visit.svg_sizes = found["title"], [tuple(s) for s in found["svgs"]]
        shot = self.send("Page.captureScreenshot", {"format": "png"}, session)
        visit.screenshot = base64.b64decode(shot["data"])
        self.send("Target.closeTarget", {"targetId": target})
        return visit

    @staticmethod
    def _record(visit: PageVisit, event: dict, url: str) -> None:
        method, params = event["method"], event.get("params", {})
        if method == "Network.requestWillBeSent":
            visit.requests.append(params["request"]["url"])
        elif method == "Network.responseReceived" and params["response"]["url"] == url:
            visit.status = params["response"]["status"]
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            visit.errors.append(details.get("exception", {}).get("description", details["text"]))
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            visit.errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            visit.errors.append(f"{params['entry']['text']} ({params['entry'].get('url', '')})")

    def close(self) -> list[NetRequest]:
        """Close the browser and return every request in its net log."""
        with contextlib.suppress(RuntimeError, queue.Empty, OSError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_write)
        return net_log_requests(self.netlog)


@dataclass(frozen=True)
class NetRequest:
    url: str
    initiator: str  # the origin of the page or worker that asked; "not an origin" for the
    # browser's own services (update checks, sign-in), which pages cannot cause


def net_log_requests(path: Path) -> list[NetRequest]:
    """Every request the network stack started, from a Chromium net log."""
    log = json.loads(path.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        NetRequest(e["params"]["url"], e["params"].get("initiator", "not an origin"))
        for e in log.get("events", [])
        if e["type"] == start and "url" in e.get("params", {})
    ]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 at a free port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
