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
- the browser logs no console error, failed request or uncaught exception;

and what a reader sees (the design's "phone readers see whole pages"):

- at 420 px, the page is no wider than the screen (it would pan sideways), and
  each display equation fits its column or scrolls in its own box and shows that
  it does (the book's edge shadow, _static/sbmm.css); none is cut;
- at 420 px, each figure's smallest text shows at 9 CSS px or more: the size the
  figure's PNG records (sbmm/book/figures.py) times its shown / natural width;
- a results table's cells stay on one line (no value stacked over several), and
  neighbouring columns keep apart;
- every character of the page's text has a glyph (none drawn as the missing-glyph
  box), the Chinese included, without a CJK font on the machine;
- every image has an alt text, not its file name.

Then it opens every chapter in JupyterLab (the project's own, started on
127.0.0.1 with a throwaway settings folder) and checks that the chapter opens
unmodified once its kernel is up, that its MyST is rendered (no raw ``{cite:p}``,
``{term}`` or ``:class: dropdown`` left in a Markdown cell: jupyterlab-myst is
loaded), and that its exercise hints are closed.

Screenshots go to ``_build/browser-check/``: ``<page>-<width>.png``, the whole page
at each width, ``<page>-420-nav.png`` with the navigation open, and
``lab-<chapter>.png``. It prints one line per page and width and per chapter in
JupyterLab, then a summary, and exits with 1 if anything failed.
"""

import base64
import functools
import http.server
import json
import os
import shutil
import socket
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
sys.path.insert(0, str(ROOT))
from sbmm.book.figures import (  # noqa: E402  (the book's figure style, from ROOT)
    MIN_TEXT_PX,
    SMALLEST_TEXT_KEY,
    SMALLEST_WHAT_KEY,
    png_record,
)

PHONE = 420  # the width at which a page must fit and its figures stay legible
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

# What a reader sees: the page's width and what sticks out of it, display equations
# (cut, or scrolling with or without a sign), figures' shown and natural widths,
# results tables' wrapped cells and touching columns, and alt texts.
READER_FACTS = r"""
(() => {
  const root = document.documentElement;
  const viewport = root.clientWidth;
  const describe = (e) => `<${e.tagName.toLowerCase()}${e.className && typeof
    e.className === "string" ? " class=" + e.className.split(" ")[0] : ""}> ${
    (e.textContent || "").trim().slice(0, 50)}`;
  // what makes the page wide: the outermost elements past the right edge that no
  // box around them scrolls or clips
  const wide = [];
  if (root.scrollWidth > viewport) {
    for (const e of document.body.querySelectorAll("*")) {
      const box = e.getBoundingClientRect();
      if (box.width === 0 || box.right <= viewport + 0.5) continue;
      if (["absolute", "fixed"].includes(getComputedStyle(e).position)) continue;
      let inside = false;
      for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
        if (getComputedStyle(a).overflowX !== "visible" || wide.includes(a)) {
          inside = true;
          break;
        }
      }
      if (!inside) wide.push(e);
    }
  }
  const tex = (m) => {
    const items = window.MathJax && MathJax.startup && MathJax.startup.document
      ? MathJax.startup.document.getMathItemsWithin(m) : [];
    return (items.length ? items[0].math : m.textContent).trim().slice(0, 60);
  };
  // a display equation: its drawing, and the nearest box around it that is
  // narrower and does not let it show (clips or scrolls)
  const equations = [];
  for (const m of document.querySelectorAll('mjx-container[display="true"]')) {
    const svg = m.querySelector("svg");
    if (!svg) continue;
    const drawn = svg.getBoundingClientRect();
    let box = null;
    for (let a = m; a && a !== document.body; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (style.overflowX === "visible") continue;
      const r = a.getBoundingClientRect();
      if (drawn.width > a.clientWidth + 1 || drawn.right > r.right + 1) {
        box = {
          column: a.clientWidth,
          scrolls: ["auto", "scroll"].includes(style.overflowX),
          // the edge shadow of _static/sbmm.css: backgrounds fixed to the content
          shows: style.backgroundAttachment.includes("local"),
        };
        break;
      }
    }
    if (box === null && drawn.right > viewport + 1) {
      box = {column: viewport, scrolls: false, shows: false};
    }
    if (box) equations.push({tex: tex(m), width: Math.round(drawn.width), ...box});
  }
  const figures = Array.from(document.querySelectorAll(".cell_output img")).map(
    (img) => ({
      src: img.currentSrc || img.src,
      natural: img.naturalWidth,
      shown: img.getBoundingClientRect().width,
    }));
  const alts = Array.from(document.images).map((img) => ({
    src: img.getAttribute("src"),
    alt: img.getAttribute("alt"),
  }));
  // results tables (a cell's HTML output): cells wrapped over lines, and neighbours
  // whose text comes within 6 px
  const tables = [];
  for (const table of document.querySelectorAll(".cell_output table")) {
    let wrapped = 0, touching = 0, example = "";
    for (const row of table.rows) {
      let last = null;
      for (const cell of row.cells) {
        const range = document.createRange();
        range.selectNodeContents(cell);
        const text = range.getBoundingClientRect();
        const lines = range.getClientRects();
        const tops = new Set(Array.from(lines).map((r) => Math.round(r.top)));
        if (tops.size > 1) {
          wrapped += 1;
          example = example || cell.textContent.trim();
        }
        if (last && text.width > 0 && text.left - last.right < 6) {
          touching += 1;
          example = example || cell.textContent.trim();
        }
        if (text.width > 0) last = text;
      }
    }
    if (wrapped || touching) {
      const caption = table.caption ? table.caption.textContent.trim() : "";
      tables.push({caption: caption.slice(0, 50), wrapped, touching, example});
    }
  }
  return {
    width: root.scrollWidth,
    viewport,
    wide: wide.slice(0, 3).map(describe),
    equations,
    figures,
    alts,
    tables,
  };
})()
"""

# Every character of the page's text (outside scripts and MathJax's drawings) drawn
# in the font its element asks for, beside what the same font draws for a character
# no font has (U+0378, unassigned): a character whose drawing is that same
# missing-glyph box, or no ink at all, has no glyph. Web fonts are loaded first.
MISSING_GLYPHS = r"""
(async () => {
  await document.fonts.ready;
  const skip = "script, style, noscript, mjx-container, svg, .MathJax";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const wanted = new Map();  // font -> set of characters
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest(skip)) continue;
    const chars = Array.from(node.textContent).filter(
      (c) => c.codePointAt(0) > 0x7e && !/[\s­​-‏⁠️]/.test(c));
    if (!chars.length) continue;
    const style = getComputedStyle(parent);
    const font = `${style.fontStyle} ${style.fontWeight} 32px ${style.fontFamily}`;
    if (!wanted.has(font)) wanted.set(font, new Set());
    chars.forEach((c) => wanted.get(font).add(c));
  }
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 48;
  const context = canvas.getContext("2d", {willReadFrequently: true});
  const draw = (font, c) => {
    context.clearRect(0, 0, 48, 48);
    context.font = font;
    context.fillText(c, 4, 36);
    return context.getImageData(0, 0, 48, 48).data.join(",");
  };
  const missing = new Set();
  for (const [font, chars] of wanted) {
    const text = Array.from(chars).join("");
    await document.fonts.load(font, text).catch(() => null);
    const nothing = draw(font, "͸");
    const blank = new Uint8ClampedArray(48 * 48 * 4).join(",");
    for (const c of chars) {
      const drawn = draw(font, c);
      if (drawn === nothing || drawn === blank) missing.add(c);
    }
  }
  return Array.from(missing).join("");
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

    def screenshot_page(self, path: Path) -> None:
        """Save the whole page, top to bottom, as a PNG."""
        width, height = self.evaluate(
            "[document.documentElement.clientWidth,"
            " document.documentElement.scrollHeight]"
        )
        data = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        )["data"]
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
    problems += reader_problems(tab.evaluate(READER_FACTS), width, html)
    if width == max(WIDTHS):  # the same text and fonts at every width
        if missing := tab.evaluate(MISSING_GLYPHS):
            problems.append(
                f"no glyph for {len(missing)} characters, drawn as boxes: {missing}"
            )
    name = page.removesuffix(".html").replace("/", "-")
    tab.evaluate("window.scrollTo(0, 0)")
    tab.screenshot_page(shots / f"{name}-{width}.png")
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


def local_file(url: str, html: Path) -> Path:
    """The built file a URL of the served book points at."""
    return html / urllib.parse.unquote(urllib.parse.urlsplit(url).path).lstrip("/")


def figure_problem(figure: dict, html: Path) -> str | None:
    """Why a figure's smallest text shows under MIN_TEXT_PX on a phone, or None."""
    name = Path(urllib.parse.urlsplit(figure["src"]).path).name
    if not figure["natural"] or not figure["shown"]:
        return None  # not loaded, or not shown: reported elsewhere
    record = png_record(local_file(figure["src"], html))
    if SMALLEST_TEXT_KEY not in record:
        return (
            f"figure {name} records no text size: drawn before the book's figure "
            "style (sbmm/book/figures.py); re-execute its chapter"
        )
    shown = float(record[SMALLEST_TEXT_KEY]) * figure["shown"] / figure["natural"]
    if shown < MIN_TEXT_PX:
        return (
            f"figure {name}: its smallest text ({record.get(SMALLEST_WHAT_KEY, '?')}) "
            f"shows at {shown:.1f} px at {PHONE} px, under {MIN_TEXT_PX:g} px "
            f"(shown at {figure['shown']:.0f} of {figure['natural']} px)"
        )
    return None


def reader_problems(facts: dict, width: int, html: Path) -> list[str]:
    """What a reader at this width would see wrong, from READER_FACTS: a page wider
    than a phone, a cut equation, text too small in a figure, a wrapped table, an
    image without alt text."""
    problems = []
    if width <= PHONE:
        if facts["width"] > facts["viewport"]:
            problems.append(
                f"the page is {facts['width']} px wide on a {facts['viewport']} px "
                f"screen; past its edge: {' | '.join(facts['wide']) or '?'}"
            )
        for eq in facts["equations"]:
            if not eq["scrolls"]:
                why = "cut"
            elif not eq["shows"]:
                why = "cut, scrolling with no sign that it does"
            else:
                continue
            problems.append(
                f"display equation {eq['width']} px wide in a {eq['column']} px "
                f"column, {why}: {eq['tex']!r}"
            )
        problems += [
            why for figure in facts["figures"] if (why := figure_problem(figure, html))
        ]
    for table in facts["tables"]:
        what = []
        if table["wrapped"]:
            what.append(f"{table['wrapped']} cells wrap over lines")
        if table["touching"]:
            what.append(f"{table['touching']} cells touch their neighbour")
        problems.append(
            f"results table {table['caption']!r}: {', '.join(what)} "
            f"(e.g. {table['example']!r})"
        )
    for image in facts["alts"] if width == max(WIDTHS) else []:  # once a page
        alt = (image["alt"] or "").strip()
        if not alt or alt.endswith(Path(image["src"] or "").name):
            problems.append(
                f"image without an alt text: {Path(image['src'] or '').name}"
                + (
                    " (the chapter's figures get one when it is re-executed)"
                    if "_images/" in (image["src"] or "")
                    else ""
                )
            )
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


# A chapter in JupyterLab, once it has rendered: the kernel's state, whether the
# document is marked modified, MyST left raw in rendered Markdown, and open hints.
LAB_STATE = r"""
(() => {
  const indicator = document.querySelector(".jp-Notebook-ExecutionIndicator");
  const rendered = Array.from(document.querySelectorAll(
    ".jp-MarkdownCell .jp-RenderedMarkdown, .jp-MarkdownCell .jp-RenderedHTMLCommon"));
  // a role's name in braces (Markdown eats its backticks), or a directive's option
  const raw = /\{(cite(:p|:t)?|term|ref|numref|doc)\}|:class: dropdown/;
  return {
    kernel: indicator ? indicator.getAttribute("data-status") : null,
    markdown: rendered.length,
    dirty: document.querySelectorAll(".lm-TabBar-tab.jp-mod-dirty").length,
    raw: rendered.map((e) => e.innerText.match(raw)).filter(Boolean)
      .map((m) => m.input.slice(Math.max(0, m.index - 30), m.index + 40)),
    open: document.querySelectorAll(".jp-MarkdownCell details[open]").length,
  };
})()
"""

# JupyterLab's settings for the check: every cell rendered (no windowing, so that
# all of a chapter's Markdown is there to read), and no news or update requests.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none"
    },
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def chapters() -> list[str]:
    """The notebooks _toc.yml lists, as paths from the repository's root."""
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    names = [
        line.split("file:", 1)[1].strip()
        for line in toc.splitlines()
        if "file:" in line
    ]
    return [f"{name}.ipynb" for name in names if (ROOT / f"{name}.ipynb").exists()]


def start_lab(settings: Path) -> tuple[subprocess.Popen, str]:
    """Start the project's JupyterLab on a free local port; the process and its URL."""
    for path, values in LAB_SETTINGS.items():
        (settings / path).parent.mkdir(parents=True, exist_ok=True)
        (settings / path).write_text(json.dumps(values))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.token=",
            "--ServerApp.password=",
            f"--ServerApp.root_dir={ROOT}",
            "--allow-root",
        ],
        env={
            **os.environ,
            "JUPYTERLAB_SETTINGS_DIR": str(settings / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(settings / "workspaces"),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "api/status", timeout=2).close()
            return lab, url
        except OSError:
            if lab.poll() is not None or time.monotonic() > deadline:
                lab.kill()
                raise RuntimeError("JupyterLab did not start") from None
            time.sleep(0.5)


def check_in_lab(tab: DevTools, url: str, chapter: str, shots: Path) -> list[str]:
    """Open a chapter in JupyterLab; the problems a reader there would see."""
    tab.call(
        "Emulation.setDeviceMetricsOverride",
        width=max(WIDTHS),
        height=HEIGHT,
        deviceScaleFactor=1,
        mobile=False,
    )
    tab.call("Page.navigate", url=f"{url}lab/tree/{chapter}?reset")
    deadline, idle = time.monotonic() + 90, 0
    while idle < 4:  # rendered, and the kernel idle for two seconds
        tab.settle(0.5)
        state = tab.evaluate(LAB_STATE)
        idle = idle + 1 if state["markdown"] and state["kernel"] == "idle" else 0
        if time.monotonic() > deadline:
            return [f"no rendered chapter with an idle kernel within 90 s: {state}"]
    tab.screenshot(shots / f"lab-{Path(chapter).stem}.png")
    problems = []
    if state["dirty"]:
        problems.append("the chapter opens marked modified")
    problems += [f"MyST shown raw: {text!r}" for text in state["raw"]]
    if state["open"]:
        problems.append(f"{state['open']} exercise hints are open")
    return problems


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
            with tempfile.TemporaryDirectory(prefix="browser-check-lab-") as folder:
                lab, url = start_lab(Path(folder))
                try:
                    for chapter in chapters():
                        problems = check_in_lab(tab, url, chapter, shots)
                        failed += bool(problems)
                        status = "ok" if not problems else f"{len(problems)} problem(s)"
                        print(f"{chapter} in JupyterLab: {status}")
                        for problem in problems:
                            print(f"    {problem}")
                finally:
                    lab.terminate()
                    lab.wait(timeout=TIMEOUT)
        finally:
            browser.terminate()
            browser.wait(timeout=TIMEOUT)
            server.shutdown()
    checks = len(pages) * len(WIDTHS) + len(chapters())
    print(
        f"{len(pages)} pages at {', '.join(map(str, WIDTHS))} px and "
        f"{len(chapters())} chapters in JupyterLab: "
        f"{checks - failed} of {checks} checks passed; screenshots in {shots}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build" / "html"
    sys.exit(main(folder.resolve()))
