"""The study's index.html opened in a real browser: headless Chromium, driven over its DevTools
protocol on a pipe with the standard library only. Every <img> must have loaded at the PNG's own
size, and nothing may be logged as an error or fail to load. A screenshot of the whole page is
kept: its path is printed, and it is copied into $FMTOOL_SCREENSHOT_DIR when that is set.

Marked `browser`; skipped, saying why, where no Chromium is found (.ci/run installs Debian's
chromium package). $FMTOOL_CHROMIUM names another binary."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    named = os.environ.get("FMTOOL_CHROMIUM")
    if named:
        return shutil.which(named)
    return next((found for found in map(shutil.which, NAMES) if found), None)


CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(CHROMIUM is None, reason=(
        f"no Chromium: $FMTOOL_CHROMIUM={os.environ['FMTOOL_CHROMIUM']!r} is not found"
        if os.environ.get("FMTOOL_CHROMIUM") else
        f"no Chromium: none of {', '.join(NAMES)} is on PATH; "
        "Debian: apt-get install chromium (.ci/run does)")),
]

# The study is tests/helpers/report.py's, of its tiny CNN, VAE, Fashion-MNIST look-alikes and
# faces: every figure is drawn, in seconds, without the real data sets.

WIDTH, HEIGHT = 1280, 900
MAX_SHOT_HEIGHT = 16000  # Chromium's largest texture is 16384 px


def _pipe() -> tuple[int, int]:
    """A pipe whose ends are fds 10 and above: the shell (bash: dash takes only fds 0-9) that
    starts Chromium moves them onto 3 and 4 without clobbering one with the other."""
    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


class DevTools:
    """Headless Chromium and its DevTools protocol on --remote-debugging-pipe: JSON messages, each
    ended by a NUL byte, written to the browser's fd 3 and read from its fd 4."""

    def __init__(self, binary: str, profile: Path, log: Path):
        to_browser_r, to_browser_w = _pipe()
        from_browser_r, from_browser_w = _pipe()
        args = [binary, "--headless", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--enable-logging=stderr", "--v=0"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        self.log = log
        with log.open("wb") as stderr:
            r, w = to_browser_r, from_browser_w
            as_fd_3_and_4 = ["bash", "-c", f'exec "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-', "bash"]
            self.process = subprocess.Popen(as_fd_3_and_4 + args, stdin=subprocess.DEVNULL, stdout=stderr,
                                            stderr=stderr, pass_fds=(r, w))
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)
        self.writer = to_browser_w
        self.reader = from_browser_r
        self.messages: queue.Queue[dict | None] = queue.Queue()
        self.events: list[dict] = []
        self.last_id = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        pending = b""
        while chunk := os.read(self.reader, 1 << 16):  # b"" once the browser has exited
            pending += chunk
            *whole, pending = pending.split(b"\0")
            for message in whole:
                self.messages.put(json.loads(message))
        self.messages.put(None)  # the browser closed its end

    def _next(self, deadline: float) -> dict:
        try:
            message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"Chromium did not answer in time; its log: {self.log}") from None
        if message is None:
            raise RuntimeError(f"Chromium closed the pipe; its log ({self.log}):\n{self.log.read_text()}")
        return message

    def call(self, method: str, session: str | None = None, timeout: float = 60, **params) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.writer, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._next(deadline)
            if answer.get("id") != self.last_id:
                self.events.append(answer)
            elif "error" in answer:
                raise RuntimeError(f"{method}: {answer['error']}")
            else:
                return answer["result"]

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while not any(event.get("method") == method for event in self.events):
            self.events.append(self._next(deadline))
        return next(event for event in self.events if event.get("method") == method)

    def drain(self, seconds: float) -> None:
        """Keeps the events that arrive within `seconds` (late console lines, failed loads)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._next(deadline))
        except TimeoutError:
            pass

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.thread.join(timeout=10)
        os.close(self.writer)
        if not self.thread.is_alive():
            os.close(self.reader)


@dataclass
class PageCheck:
    """What the browser saw on one page."""

    images: list[dict]  # per <img>: src, complete, naturalWidth, naturalHeight
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    screenshot: Path | None = None

    def problems(self, folder: Path) -> list[str]:
        found = list(self.errors)
        for image in self.images:
            src = image["src"]
            if not image["complete"] or image["naturalWidth"] == 0:
                found.append(f"<img src={src!r}> did not load")
            elif src.endswith(".png") and (folder / src).is_file():
                with Image.open(folder / src) as png:
                    if (image["naturalWidth"], image["naturalHeight"]) != png.size:
                        found.append(f"<img src={src!r}> is {image['naturalWidth']}x"
                                     f"{image['naturalHeight']} in the browser, {png.size} on disk")
        return found


IMAGES = """JSON.stringify(Array.from(document.images, image => ({src: image.getAttribute("src"),
    complete: image.complete, naturalWidth: image.naturalWidth, naturalHeight: image.naturalHeight})))"""


def open_in_chromium(page: Path, screenshot: Path, work: Path) -> PageCheck:
    """Opens `page` in headless Chromium, waits for its load event (every image settled, loaded
    or not), and reports its images, what was logged as an error, and a full-page screenshot."""
    work.mkdir(parents=True, exist_ok=True)
    browser = DevTools(CHROMIUM, work / "profile", work / "chromium.log")
    try:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(f"{domain}.enable", session)
        browser.call("Emulation.setDeviceMetricsOverride", session, width=WIDTH, height=HEIGHT,
                     deviceScaleFactor=1, mobile=False)
        navigated = browser.call("Page.navigate", session, url=page.resolve().as_uri())
        assert "errorText" not in navigated, navigated
        browser.wait_for("Page.loadEventFired")
        browser.drain(0.5)
        evaluated = browser.call("Runtime.evaluate", session, expression=IMAGES, returnByValue=True)
        images = json.loads(evaluated["result"]["value"])
        size = browser.call("Page.getLayoutMetrics", session)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], MAX_SHOT_HEIGHT),
                "scale": 1}
        shot = browser.call("Page.captureScreenshot", session, format="png", clip=clip,
                            captureBeyondViewport=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        browser.drain(0.2)
    finally:
        browser.close()
    return PageCheck(images, errors_in(browser.events), screenshot)


def errors_in(events: list[dict]) -> list[str]:
    urls = {}
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif method == "Network.loadingFailed":
            errors.append(f"failed to load {urls.get(params['requestId'], params['requestId'])}: "
                          f"{params.get('errorText')}")
        elif method == "Network.responseReceived" and params["response"].get("status", 0) >= 400:
            errors.append(f"{params['response']['url']}: HTTP {params['response']['status']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            errors.append(f"logged: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            errors.append("console.error: " + " ".join(str(arg.get("value", arg.get("description")))
                                                       for arg in params["args"]))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(f"exception: {details.get('exception', {}).get('description', details['text'])}")
    return errors


def keep(screenshot: Path) -> Path:
    """The screenshot stays in pytest's temporary folder; $FMTOOL_SCREENSHOT_DIR gets a copy."""
    folder = os.environ.get("FMTOOL_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy2(screenshot, Path(folder) / screenshot.name)
    print(f"screenshot of the study page: {screenshot}"
          + (f" (copied into {folder})" if folder else ""))
    return screenshot


@pytest.fixture(scope="module")
def study(study: dict) -> Path:
    """The shared study's folder."""
    return Path(study["out"])


def test_every_figure_loads_in_chromium_and_nothing_is_logged_as_an_error(study: Path, tmp_path: Path):
    page = study / "index.html"
    check = open_in_chromium(page, tmp_path / "study-in-chromium.png", tmp_path / "chromium")
    keep(check.screenshot)
    assert check.problems(study) == []
    pictures = sorted(p.name for p in study.glob("*.png"))
    assert len(pictures) >= 12
    assert sorted({image["src"] for image in check.images}) == pictures  # every PNG is shown
    with Image.open(check.screenshot) as shot:
        assert shot.width == WIDTH and shot.height > HEIGHT  # the whole page, not a blank tab


def test_a_missing_figure_is_caught(study: Path, tmp_path: Path):
    """The check above can fail: with one PNG gone, the browser reports that <img> and its file."""
    broken = tmp_path / "study"
    shutil.copytree(study, broken)
    (broken / "figure10_pairs.png").unlink()
    check = open_in_chromium(broken / "index.html", tmp_path / "broken.png", tmp_path / "chromium")
    problems = check.problems(broken)
    assert "<img src='figure10_pairs.png'> did not load" in problems
    assert any("figure10_pairs.png" in line and line.startswith("failed to load") for line in problems), problems
