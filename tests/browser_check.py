"""Check the built book in headless Chromium, the way a reader's browser shows it.

Run by ``make browser-check`` (``python tests/browser_check.py [HTML folder]``);
pytest does not collect this file. The book in ``_build/html`` is served on
127.0.0.1 with Python's http.server, and every page is opened at 1,400 and 420 px
wide through the Chrome DevTools Protocol (websocket-client, which Jupyter
already installs). On each page it checks that:

- every image loads, and nothing is fetched from outside the book;
- every internal link leads to a built page, and to an anchor that page has;
- the math is rendered: MathJax output in every math element, no MathJax error,
  and no raw TeX (``$``, ``\\(``, ``\\[``) left in the text outside code;
- at 420 px, the navigation button (☰) opens the site navigation, and the
  page-contents button, where a page has one, opens the page's contents;
- the browser logs no console error, failed request or uncaught exception.

Screenshots go to ``_build/browser-check/``: ``<page>-<width>.png`` for each page
and width (at its first math, if any), and ``<page>-420-nav.png`` with the
navigation open. It prints one
line per page and width, then a summary, and exits with 1 if anything failed.
"""

import base64
import functools
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import websocket

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (1400, 420)
HEIGHT = 900
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]
TIMEOUT = 30.0

# Text nodes inside these are code or MathJax's own output, where $ and \( are fine.
PAGE_FACTS = r"""
(() => {
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const rawTex = /\\\(|\\\)|\\\[|\\\]|\$\$|\$[^$\s][^$]*\$|\\begin\{/;
  const raw = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest(skip)) continue;
    const match = node.textContent.match(rawTex);
    if (match) raw.push(node.textContent.trim().slice(0, 80));
  }
  const maths = Array.from(document.querySelectorAll(".math"));
  return {
    images: Array.from(document.images).map((img) => ({
      src: img.currentSrc || img.src,
      ok: img.complete && img.naturalWidth > 0,
    })),
    links: Array.from(document.querySelectorAll("a[href]")).map((a) => a.href),
    math: maths.length,
    unrendered: maths.filter((m) => !m.querySelector("mjx-container")).length,
    mathErrors: Array.from(document.querySelectorAll("mjx-merror"))
      .map((e) => e.getAttribute("data-mjx-error") || e.textContent),
    rawTex: raw,
  };
})()
"""

# Images below the fold may be lazy; load them all before looking.
LOAD_IMAGES = """
Promise.all(Array.from(document.images).map((img) => {
  img.loading = "eager";
  return img.decode().catch(() => null);
}))
"""

# MathJax typesets after the load event; wait for it where a page loads it.
MATHJAX_DONE = """
(window.MathJax && MathJax.startup && MathJax.startup.promise)
  ? MathJax.startup.promise.then(() => true) : false
"""

# Screenshots show a page's first math where it has some, else its top.
SHOW_MATH = """
(() => {
  const math = document.querySelector("mjx-container");
  if (math) math.scrollIntoView({block: "center"}); else window.scrollTo(0, 0);
})()
"""

VISIBLE_BUTTON = """
(() => {
  const button = Array.from(document.querySelectorAll(%s)).find((b) => {
    const box = b.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(b).visibility
      !== "hidden";
  });
  if (!button) return null;
  button.scrollIntoView({block: "center"});
  const box = button.getBoundingClientRect();
  return {x: box.x + box.width / 2, y: box.y + box.height / 2};
})()
"""

DIALOG_STATE = """
(() => {
  const dialog = document.getElementById(%s);
  if (!dialog) return {open: false, links: 0};
  const box = dialog.getBoundingClientRect();
  const links = Array.from(dialog.querySelectorAll("a[href]"))
    .filter((a) => a.getBoundingClientRect().width > 0).length;
  return {open: dialog.open && box.width > 0, links: links};
})()
"""


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page target."""

    def __init__(self, websocket_url: str) -> None:
        self.socket = websocket.create_connection(
            websocket_url, timeout=TIMEOUT, suppress_origin=True
        )
        self.last_id = 0
        self.events: list[dict] = []

    def _receive(self) -> dict:
        message = json.loads(self.socket.recv())
        if "method" in message:
            self.events.append(message)
        return message

    def call(self, method: str, **params) -> dict:
        """Send a command and return its result, keeping the events that arrive."""
        self.last_id += 1
        self.socket.send(
            json.dumps({"id": self.last_id, "method": method, "params": params})
        )
        while True:
            message = self._receive()
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def find(self, method: str, start: int = 0) -> int | None:
        """The index of the first event received from the start-th on, if any."""
        for index in range(start, len(self.events)):
            if self.events[index]["method"] == method:
                return index
        return None

    def wait_for(self, method: str, start: int = 0) -> int:
        """Wait for an event from the start-th received on; the index of the first."""
        deadline = time.monotonic() + TIMEOUT
        while (index := self.find(method, start)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {TIMEOUT} s")
            self._receive()
        return index

    def load(self, url: str) -> None:
        """Open a URL and wait for the page it ends on (after any redirect) to load."""
        self.call("Page.navigate", url=url)
        loaded = self.wait_for("Page.loadEventFired")
        self.settle(0.3)
        redirect = "Page.frameStartedLoading"
        while (started := self.find(redirect, loaded + 1)) is not None:
            loaded = self.wait_for("Page.loadEventFired", started)
            self.settle(0.3)

    def settle(self, seconds: float) -> None:
        """Keep receiving events for a while (late console errors, animations)."""
        deadline = time.monotonic() + seconds
        self.socket.settimeout(0.05)
        try:
            while time.monotonic() < deadline:
                try:
                    self._receive()
                except websocket.WebSocketTimeoutException:
                    pass
        finally:
            self.socket.settimeout(TIMEOUT)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression, awaiting it if it is a promise."""
        result = self.call(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        """Save the viewport as a PNG."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def click(self, x: float, y: float) -> None:
        """A real mouse click at a point of the viewport."""
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=x,
                y=y,
                button="left",
                clickCount=1,
            )


class _Anchors(HTMLParser):
    """Collects the id and name attributes of a page: its link targets."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.anchors.add(value)


@functools.cache
def anchors(page: Path) -> frozenset[str]:
    """The anchors a built page offers."""
    parser = _Anchors()
    parser.feed(page.read_text(encoding="utf-8"))
    return frozenset(parser.anchors)


def broken_link(href: str, base: str, html: Path) -> str | None:
    """Why an internal link does not resolve, or None when it does (or is external)."""
    if not href.startswith(base):
        return None
    parts = urllib.parse.urlsplit(href)
    target = html / urllib.parse.unquote(parts.path).lstrip("/")
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return f"link to a missing file: {href}"
    fragment = urllib.parse.unquote(parts.fragment)
    if fragment and target.suffix == ".html" and fragment not in anchors(target):
        return f"link to a missing anchor: {href}"
    return None


def console_problems(events: list[dict], base: str) -> list[str]:
    """Console errors, uncaught exceptions, failed and outside requests.

    The browser's own request for /favicon.ico, which the book does not have, is
    not the book's: a page opened from disk makes none.
    """
    favicon = base + "favicon.ico"
    problems = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if favicon in json.dumps(params):
            continue
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details["text"]
            problems.append(f"uncaught exception: {text.splitlines()[0]}")
        elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
            text = " ".join(
                str(a.get("value", a.get("description", ""))) for a in params["args"]
            )
            problems.append(f"console error: {text[:200]}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            problems.append(f"console error: {entry['text']} {entry.get('url', '')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith((base, "data:", "blob:", "about:")):
                problems.append(f"request to outside the book: {url}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"request failed: {params['errorText']}")
        elif method == "Network.responseReceived":
            response = params["response"]
            if response["status"] >= 400:
                problems.append(f"HTTP {response['status']}: {response['url']}")
    return problems


def check_toggle(tab: DevTools, button: str, dialog: str) -> str | None:
    """Click the visible button; why its sidebar did not open, or None if it did."""
    point = tab.evaluate(VISIBLE_BUTTON % json.dumps(button))
    if point is None:
        return f"no visible {button} button"
    tab.click(point["x"], point["y"])
    tab.settle(0.4)
    state = tab.evaluate(DIALOG_STATE % json.dumps(dialog))
    if not state["open"]:
        return f"the {button} button does not open #{dialog}"
    if not state["links"]:
        return f"#{dialog} opens with no links in it"
    return None


def close_dialogs(tab: DevTools) -> None:
    """Close the sidebar dialogs that a toggle check opened."""
    tab.evaluate("document.querySelectorAll('dialog[open]').forEach((d) => d.close())")


def check_page(
    tab: DevTools, page: str, width: int, base: str, html: Path, shots: Path
) -> list[str]:
    """Open one page at one width; the problems found."""
    tab.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=HEIGHT,
        deviceScaleFactor=1,
        mobile=width < 600,
    )
    tab.events.clear()
    tab.load(base + page)
    tab.evaluate(LOAD_IMAGES)
    has_mathjax = tab.evaluate(MATHJAX_DONE)
    tab.settle(0.3)
    facts = tab.evaluate(PAGE_FACTS)
    problems = [
        f"image does not load: {image['src']}"
        for image in facts["images"]
        if not image["ok"]
    ]
    problems += sorted(
        {why for href in facts["links"] if (why := broken_link(href, base, html))}
    )
    if facts["math"] and not has_mathjax:
        problems.append(f"{facts['math']} math elements but no MathJax")
    if facts["unrendered"]:
        problems.append(
            f"{facts['unrendered']} of {facts['math']} math elements "
            "not rendered by MathJax"
        )
    problems += [f"MathJax error: {error}" for error in facts["mathErrors"]]
    problems += [f"raw TeX in the text: {text!r}" for text in facts["rawTex"]]
    name = page.removesuffix(".html").replace("/", "-")
    tab.evaluate(SHOW_MATH)
    tab.screenshot(shots / f"{name}-{width}.png")
    if width < 992:
        why = check_toggle(tab, ".primary-toggle", "pst-primary-sidebar-modal")
        if why:
            problems.append(why)
        else:
            tab.screenshot(shots / f"{name}-{width}-nav.png")
        close_dialogs(tab)
        if tab.evaluate(VISIBLE_BUTTON % json.dumps(".secondary-toggle")):
            why = check_toggle(tab, ".secondary-toggle", "pst-secondary-sidebar-modal")
            if why:
                problems.append(why)
            close_dialogs(tab)
    problems += console_problems(tab.events, base)
    return problems


def serve(html: Path) -> http.server.ThreadingHTTPServer:
    """Serve the HTML folder on 127.0.0.1, on a free port, quietly."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args) -> None:
            """Leave the terminal to the check's own report."""

    handler = functools.partial(Quiet, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_chromium(profile: Path) -> tuple[subprocess.Popen, int]:
    """Start headless Chromium with a fresh profile; the process and its CDP port."""
    browser = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + TIMEOUT
    while not (port_file.exists() and port_file.read_text().strip()):
        if browser.poll() is not None or time.monotonic() > deadline:
            browser.kill()
            raise RuntimeError("Chromium did not start its DevTools endpoint")
        time.sleep(0.1)
    return browser, int(port_file.read_text().split()[0])


def open_tab(port: int) -> DevTools:
    """A new page target, with the events the checks listen to enabled."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT"
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        target = json.load(response)
    tab = DevTools(target["webSocketDebuggerUrl"])
    for domain in ("Page", "Runtime", "Log", "Network"):
        tab.call(f"{domain}.enable")
    tab.call("Network.setCacheDisabled", cacheDisabled=True)
    return tab


def main(html: Path) -> int:
    """Check every page at every width; 0 if all is well, 1 if not."""
    if not (html / "index.html").exists():
        print(f"no book in {html}: run `make book` first")
        return 1
    shots = ROOT / "_build" / "browser-check"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    pages = sorted(
        str(p.relative_to(html))
        for p in html.rglob("*.html")
        if not p.relative_to(html).parts[0].startswith("_")
    )
    server = serve(html)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    failed = 0
    with tempfile.TemporaryDirectory(prefix="browser-check-") as profile:
        browser, port = start_chromium(Path(profile))
        try:
            tab = open_tab(port)
            for page in pages:
                for width in WIDTHS:
                    problems = check_page(tab, page, width, base, html, shots)
                    failed += bool(problems)
                    status = "ok" if not problems else f"{len(problems)} problem(s)"
                    print(f"{page} at {width} px: {status}")
                    for problem in problems:
                        print(f"    {problem}")
        finally:
            browser.terminate()
            browser.wait(timeout=TIMEOUT)
            server.shutdown()
    checks = len(pages) * len(WIDTHS)
    print(
        f"{len(pages)} pages at {', '.join(map(str, WIDTHS))} px: "
        f"{checks - failed} of {checks} checks passed; screenshots in {shots}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build" / "html"
    sys.exit(main(folder.resolve()))
