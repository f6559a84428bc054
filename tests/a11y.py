"""Accessibility check of every page the browser journeys load: axe-core plus a check of
form controls' boundaries, which axe does not test.

`A11yAudit` is attached to a Playwright browser context (the `page` fixture of
tests/test_browser.py does it, so every journey gets it without asking):

1. An init script injects axe-core (vendored in tests/vendor/axe-core) into every top-level
   document of the app (the live server's address). The document announces itself at once
   and, when it has loaded, runs the check and pushes the result to the test (exposed
   bindings).
2. Before a page leaves a document for another (any navigation request of a top-level
   frame: a link, a form, `goto`, `reload`, `go_back`), a route handler holds the request
   until that document's result has arrived. Nothing is sampled: the journey cannot outrun
   the check.
3. When the test ends, it waits for the documents still open, and every document that
   opened must have a result; a serious or critical violation anywhere fails the test with
   a readable list (`A11yAudit.failures`); all results, of every impact, are written to
   test-artifacts/a11y/<test>.json.

Back/forward cache is off for the browser (see CHROMIUM_ARGS in tests/test_browser.py): a
page frozen in that cache would stop its check half-way.

Controls' boundaries (WCAG 2.2 SC 1.4.11, non-text contrast 3:1): a text field, list box,
check box or radio button must be told apart from its background by a border or fill of
at least 3:1. axe-core leaves 1.4.11 to manual review, so the page script measures it.

Set TRIALDESK_A11Y_SCREENSHOTS=1 to save a full-page screenshot of the checked documents
in test-artifacts/a11y/ for a human look (best effort: not of a page already being left).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import BrowserContext, Error, Page, Request, Route

AXE_DIR = Path(__file__).resolve().parent / "vendor" / "axe-core"
AXE_VERSION = "4.14.1"
FAILING_IMPACTS = ("critical", "serious")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "a11y"
NON_TEXT_CONTRAST = 3.0
CHECK_TIMEOUT_S = 120  # axe on a long page of a busy machine
POLL_MS = 25
MAX_NODES = 10

# Runs in every top-level document before the page's own scripts. `__trialdeskA11y()`
# returns the document's result (one promise per document, started at load).
_PAGE_SCRIPT = r"""
(() => {
  if (window !== window.top || window.__trialdeskA11yInstalled) return;
  window.__trialdeskA11yInstalled = true;
  const documentId = Math.random().toString(36).slice(2) + "-" + Date.now();
  const loaded = new Promise((resolve) => {
    if (document.readyState === "complete") resolve();
    else window.addEventListener("load", () => resolve(), { once: true });
  });
  // A load that never completes (a stalled resource) is still checked, later.
  const loadedOrLate = Promise.race([loaded, new Promise((r) => setTimeout(r, 10000))]);

  function channels(text) {
    let m = /^rgba?\(([^)]+)\)$/.exec(text);
    if (m) {
      const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    m = /^color\(srgb ([^)]+)\)$/.exec(text);
    if (m) {
      const p = m[1].split(/[\s\/]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    return null;  // a colour we cannot read: not judged
  }
  function over(top, bottom) {  // source-over compositing onto an opaque colour
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  }
  function luminance(c) {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  function contrast(a, b) {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  }
  function backgroundOf(element) {  // what shows through behind `element`
    const chain = [];
    for (let e = element; e; e = e.parentElement) chain.push(e);
    let colour = [255, 255, 255, 1];
    for (const e of chain.reverse()) {
      const c = channels(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) colour = over(c, colour);
    }
    return colour;
  }
  function hex(c) {
    return "#" + c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
  }
  function describe(element) {
    let text = element.tagName.toLowerCase();
    if (element.id) return text + "#" + element.id;
    if (element.name) text += '[name="' + element.name + '"]';
    if (element.type && element.tagName === "INPUT") text += '[type="' + element.type + '"]';
    return text;
  }
  const CONTROLS = 'input:not([type="hidden"]):not([type="submit"]):not([type="button"])' +
    ':not([type="reset"]):not([type="image"]):not([type="range"]):not([type="color"])' +
    ':not([type="file"]), select, textarea';

  // Contrast of a control's boundary: its fill or its most visible border side against
  // what is behind it, whichever is higher.
  function boundary(element) {
    const style = getComputedStyle(element);
    const behind = backgroundOf(element.parentElement);
    const fill = channels(style.backgroundColor);
    const own = fill ? over(fill, behind) : behind;
    let best = { ratio: contrast(own, behind), colour: hex(own) + " fill", background: hex(behind) };
    for (const side of ["Top", "Right", "Bottom", "Left"]) {
      if (style["border" + side + "Style"] === "none") continue;
      if (parseFloat(style["border" + side + "Width"]) <= 0) continue;
      const c = channels(style["border" + side + "Color"]);
      if (!c) return { ratio: Infinity, colour: "unreadable", background: hex(behind) };
      const ratio = contrast(over(c, own), behind);
      if (ratio > best.ratio) best = { ratio, colour: hex(over(c, own)) + " border", background: hex(behind) };
    }
    return best;
  }

  // Measurements for the tests (tests/test_browser_a11y.py).
  window.__trialdeskA11yMeasure = {
    text(element) {
      const behind = backgroundOf(element);
      const fg = over(channels(getComputedStyle(element).color), behind);
      return { ratio: contrast(fg, behind), colour: hex(fg), background: hex(behind) };
    },
    boundary,
    outline(element) {  // drawn outside the element, over what is behind it
      const style = getComputedStyle(element);
      const behind = backgroundOf(element.parentElement);
      const width = style.outlineStyle === "none" ? 0 : parseFloat(style.outlineWidth);
      const c = channels(style.outlineColor);
      if (!width || !c) return { ratio: 1, width, colour: "none", background: hex(behind) };
      const colour = over(c, behind);
      return { ratio: contrast(colour, behind), width, colour: hex(colour), background: hex(behind) };
    },
  };

  function controlBoundaries() {
    const nodes = [];
    for (const element of document.querySelectorAll(CONTROLS)) {
      if (element.disabled || !element.getClientRects().length) continue;
      const style = getComputedStyle(element);
      if (style.visibility !== "visible" || Number(style.opacity) === 0) continue;
      const kind = element.type;
      // Native check boxes and radio buttons are drawn by the browser, not by CSS.
      if ((kind === "checkbox" || kind === "radio") && style.appearance !== "none") continue;
      const best = boundary(element);
      if (best.ratio < %(threshold)s) {
        nodes.push({
          target: [describe(element)],
          html: element.outerHTML.slice(0, 200),
          failureSummary: "Boundary contrast " + best.ratio.toFixed(2) + ":1 (" + best.colour +
            " on " + best.background + "); a control needs 3:1 against its background",
        });
      }
    }
    if (!nodes.length) return [];
    return [{
      id: "control-boundary-contrast",
      impact: "serious",
      help: "Form controls must have a boundary with 3:1 contrast (WCAG 2.2 SC 1.4.11)",
      helpUrl: "https://www.w3.org/WAI/WCAG22/Understanding/non-text-contrast.html",
      nodes,
    }];
  }

  async function check() {
    await loadedOrLate;
    const result = await axe.run(document, { resultTypes: ["violations"] });
    const violations = result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({
        target: n.target, html: n.html.slice(0, 200), failureSummary: n.failureSummary,
      })),
    }));
    return { violations: violations.concat(controlBoundaries()) };
  }
  const report = (result) => window.__trialdeskA11yReport(Object.assign(
    { documentId, url: location.href, title: document.title }, result));
  // Announced at once, long before the page can navigate on: the test then knows that this
  // document owes a result before the page may leave it.
  const opened = () => window.__trialdeskA11yOpened(documentId, location.href);
  if (window.__trialdeskA11yOpened) opened();
  else document.addEventListener("DOMContentLoaded", opened, { once: true });
  document.addEventListener("DOMContentLoaded", () => {
    check().then(report, (e) => report({ error: String(e) }));
  }, { once: true });
})();
"""


@dataclass
class PageResult:
    url: str
    title: str
    violations: list[dict]


@dataclass
class A11yAudit:
    """Checks every top-level document of a browser context (see the module docstring)."""

    context: BrowserContext
    base_url: str
    name: str
    results: dict[str, PageResult] = field(default_factory=dict)
    opened: dict[str, str] = field(default_factory=dict)  # document id -> URL
    showing: dict[Page, str] = field(default_factory=dict)  # page -> its document's id
    errors: list[str] = field(default_factory=list)
    _screenshots: int = 0

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        script = (AXE_DIR / "axe.min.js").read_text(encoding="utf-8")
        script += _PAGE_SCRIPT % {"threshold": NON_TEXT_CONTRAST}
        self.context.expose_binding("__trialdeskA11yOpened", self._on_opened)
        self.context.expose_binding("__trialdeskA11yReport", self._on_report)
        self.context.add_init_script(script=script)
        self.context.route(lambda url: url.startswith(self.base_url), self._on_request)

    # --- Collecting ---------------------------------------------------------------------
    # The page pushes its result through a binding: Playwright does not evaluate script in
    # a frame whose navigation request is paused in a route handler, so the handler waits
    # for the push instead of asking.

    def _on_opened(self, source: dict, document_id: str, url: str) -> None:
        if url.startswith(self.base_url):
            self.opened[document_id] = url
            self.showing[source["page"]] = document_id

    def _on_report(self, source: dict, result: dict) -> None:
        if "error" in result:
            self.errors.append(f"{self._path(result['url'])}: axe-core failed: {result['error']}")
            self.results[result["documentId"]] = PageResult(result["url"], result["title"], [])
            return
        self.results[result["documentId"]] = PageResult(
            result["url"], result["title"], result["violations"]
        )
        if os.environ.get("TRIALDESK_A11Y_SCREENSHOTS"):
            self._screenshot(source["page"])

    def _on_request(self, route: Route, request: Request) -> None:
        try:
            if request.is_navigation_request() and request.frame.parent_frame is None:
                self.wait_for_check(request.frame.page)
        finally:
            route.fallback()

    def wait_for_check(self, page: Page) -> None:
        """Wait until the document `page` shows has reported its result."""
        document_id = self.showing.get(page)
        deadline = time.monotonic() + CHECK_TIMEOUT_S
        while document_id is not None and document_id not in self.results:
            if time.monotonic() > deadline or page.is_closed():
                return  # finish() reports it as never checked
            page.wait_for_timeout(POLL_MS)

    def finish(self) -> None:
        """Wait for the checks of the documents still open; record any never checked."""
        for page in self.context.pages:
            self.wait_for_check(page)
        for document_id, url in self.opened.items():
            if document_id not in self.results:
                self.errors.append(
                    f"{self._path(url)}: no result (the check took over {CHECK_TIMEOUT_S} s, "
                    "or the page was closed or replaced before it finished)"
                )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{_slug(self.name)}.json").write_text(
            json.dumps(
                {"pages": [vars(r) for r in self.results.values()], "errors": self.errors},
                indent=1,
            ),
            encoding="utf-8",
        )

    # --- Reporting ----------------------------------------------------------------------

    def failures(self) -> str:
        """A readable list of the serious and critical violations and of the pages not
        checked; empty when there are none."""
        lines = []
        failing = 0
        for result in self.results.values():
            violations = [v for v in result.violations if v["impact"] in FAILING_IMPACTS]
            if not violations:
                continue
            lines.append(f"\n{self._path(result.url)}  ({result.title})")
            for v in violations:
                failing += 1
                lines.append(f"  [{v['impact']}] {v['id']}: {v['help']}\n    {v['helpUrl']}")
                for node in v["nodes"][:MAX_NODES]:
                    summary = " ".join(node["failureSummary"].split())
                    lines.append(f"    - {' '.join(map(str, node['target']))}: {summary}")
                if len(v["nodes"]) > MAX_NODES:
                    lines.append(f"    … and {len(v['nodes']) - MAX_NODES} more elements")
        lines.extend(f"\n{error}" for error in self.errors)
        if not lines:
            return ""
        head = (
            f"Accessibility (axe-core {AXE_VERSION}): {failing} serious or critical "
            f"violation(s) on {len(self.results)} page(s) checked"
            + (f"; {len(self.errors)} problem(s) checking" if self.errors else "")
            + f". All results: {ARTIFACTS / (_slug(self.name) + '.json')}"
        )
        return head + "\n".join(lines)

    def _path(self, url: str) -> str:
        return (url[len(self.base_url) :] or "/") if url.startswith(self.base_url) else url

    def _screenshot(self, page: Page) -> None:
        """Best effort: a page the journey has already left (the check finished during a
        paused navigation, when Playwright cannot capture) is skipped."""
        self._screenshots += 1
        path = ARTIFACTS / f"{_slug(self.name)}-{self._screenshots:02d}.png"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(path), full_page=True, timeout=5000)
        except Error as exc:  # a screenshot is a convenience, not part of the check
            print(f"{page.url}: screenshot failed ({exc})")


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text)
