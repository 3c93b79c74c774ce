"""The built book renders offline in a real browser.

The book is built into _build/ (as `make book` does), served from 127.0.0.1,
and every page of ``_toc.yml`` is opened in headless Chromium (Playwright).
Requests leaving 127.0.0.1 are blocked, so this also proves that no page
needs the network (no CDN). Per page:

* the ``<title>`` contains the page's first heading;
* no JavaScript error, no error on the console, no failed request or HTTP
  error;
* where the source has math, MathJax typeset it (``mjx-container``), and no raw
  TeX delimiters and no MathJax error boxes are left in the visible text;
* where a notebook stores widget state, the widgets are drawn;
* every kernel-free slider (``dlcourse.widgets.static_slider``) of the page
  works: moved with the keyboard and with the pointer, it shows another frame
  (other pixels), exactly one frame at a time, and its label and
  ``aria-valuetext`` name the new value; every chapter page has one;
* axe-core (vendored from npm) finds no serious or critical accessibility
  violation (colour contrast included, in the light and the dark theme), and
  no heading out of order; every image of the article has alt
  text that is a sentence, not a file name;
* chapter pages have working Binder and Colab launch links to their notebook;
* a screenshot goes to ``_build/screenshots/<page>.png``: the whole page
  when the test fails or ``DLCOURSE_SCREENSHOTS=full`` is set (seconds per
  long page), else the first screen.

Run: ``.venv/bin/pytest tests/test_browser.py`` (or, without the nbval options
of pyproject's addopts,
``.venv/bin/pytest tests/test_browser.py -p no:nbval -o addopts=""``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:
    # the `browser` fixture skips (or fails in CI) with a clear message
    PlaywrightTimeout = TimeoutError

REPO = Path(__file__).resolve().parents[1]
AXE = REPO / "_vendor" / "tools" / "axe-core" / "axe.min.js"
# axe-core impacts that fail a page, and rules that fail it at any impact
AXE_FAIL_IMPACTS = {"serious", "critical"}
AXE_FAIL_RULES = {"heading-order", "image-alt", "label"}
MIN_ALT = 40
# The page on which axe also checks the highlighted code (see below).
CODE_CONTRAST_PAGE = "book/optimization/03_basic_algorithms"
# WCAG AA for normal text
MIN_CONTRAST = 4.5
NO_TRANSITIONS_CSS = (
    "*, *::before, *::after "
    "{transition: none !important; animation: none !important}"
)
# A chapter's own weight (its HTML with the embedded slider frames, plus the
# figures it links): under a few MB, so that a page loads on a slow line.
MAX_PAGE_BYTES = 4_000_000
SCREENSHOTS = REPO / "_build" / "screenshots"
PAGE_TIMEOUT_MS = 30_000
HIDDEN_OUTPUT = {"remove-output", "remove-cell"}
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# Problems we cannot fix from this repository: (kind, regex on the message,
# why). Empty: the duplicate THEBE_JS_URL script is removed by
# _ext/dedupe_scripts.py and the book has a favicon, so every console error
# fails the test.
ALLOWED: list[tuple[str, str, str]] = []


# ------------------------------------------------------------ pages and sources
def toc_pages() -> list[str]:
    """The root and every `file:` entry of _toc.yml, in order."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf8"))
    pages = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                pages.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({key: value for key, value in toc.items() if key != "root"})
    return list(
        dict.fromkeys(
            page.removesuffix(".md").removesuffix(".ipynb") for page in pages
        )
    )


def source_of(docname: str) -> Path:
    for suffix in (".md", ".ipynb"):
        if (path := REPO / f"{docname}{suffix}").is_file():
            return path
    raise FileNotFoundError(
        f"{docname} from _toc.yml has no .md or .ipynb source"
    )


def markdown_text(path: Path) -> str:
    """The markdown of a page.

    For a notebook: its markdown cells and its latex/markdown outputs.
    """
    if path.suffix == ".md":
        return path.read_text(encoding="utf8")
    nb = json.loads(path.read_text(encoding="utf8"))
    parts = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            parts.append("".join(cell["source"]))
        for output in cell.get("outputs", []):
            for mime in ("text/latex", "text/markdown"):
                if mime in output.get("data", {}):
                    parts.append("".join(output["data"][mime]))
    return "\n\n".join(parts)


def without_fences(markdown: str) -> str:
    return re.sub(r"^(```|~~~).*?^\1", "", markdown, flags=re.S | re.M)


def without_code(markdown: str) -> str:
    return re.sub(r"`[^`\n]+`", "", without_fences(markdown))  # and inline code


def first_heading(markdown: str) -> str:
    match = re.search(
        r"^#{1,6}\s+(.+?)\s*#*\s*$", without_fences(markdown), flags=re.M
    )
    assert match, "the page source has no markdown heading"
    return plain(match.group(1))


def plain(text: str) -> str:
    """Drop markup that differs between a markdown heading and the HTML title.

    That is `, * and the math delimiters.
    """
    return " ".join(re.sub(r"[`*$]|\\[()]", "", text).split())


def has_math(markdown: str) -> bool:
    return bool(
        re.search(
            r"\$[^$\n]+\$|\$\$|\\\(|\\\[|\\begin\{|\{math\}",
            without_code(markdown),
        )
    )


def displayed_widgets(path: Path) -> int:
    """How many widget views the notebook displays whose state it stores.

    0 if none.
    """
    if path.suffix != ".ipynb":
        return 0
    nb = json.loads(path.read_text(encoding="utf8"))
    state = (
        nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    )
    views = [
        output["data"][WIDGET_VIEW].get("model_id")
        for cell in nb["cells"]
        if not HIDDEN_OUTPUT & set(cell["metadata"].get("tags", []))
        for output in cell.get("outputs", [])
        if WIDGET_VIEW in output.get("data", {})
    ]
    return sum(model_id in state for model_id in views)


def static_sliders(path: Path) -> int:
    """How many kernel-free sliders the page of this source shows."""
    if path.suffix != ".ipynb":
        return 0
    nb = json.loads(path.read_text(encoding="utf8"))
    return sum(
        'class="dlc-slider"' in "".join(output["data"]["text/html"])
        for cell in nb["cells"]
        if not HIDDEN_OUTPUT & set(cell["metadata"].get("tags", []))
        for output in cell.get("outputs", [])
        if "text/html" in output.get("data", {})
    )


def is_chapter(docname: str) -> bool:
    return docname.startswith(("book/regularization/", "book/optimization/"))


def repository() -> tuple[str, str]:
    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf8"))
    url = config["repository"]["url"].removeprefix("https://github.com/")
    return url.strip("/"), config["repository"].get("branch", "main")


# --------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def site() -> Path:
    """Build the book (with vendored JavaScript) as `make book` does, into
    _build/. Sphinx rebuilds only what changed since the last build, so after
    `make book` (as in CI) this takes seconds.

    Return the HTML root.
    """
    # A no-op when _vendor/ is complete; otherwise fetches the pinned npm
    # packages.
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "vendor_assets.py")], check=True
    )
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run(
        [str(jupyter_book), "build", str(REPO)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, (
        "jupyter-book build failed:\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return REPO / "_build" / "html"


@pytest.fixture(scope="session")
def base_url(site):
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


# --------------------------------------------------------------------- the test
VISIBLE_TEXT_JS = """() => {
  // Visible text outside code blocks and outside typeset math.
  const skip = "pre, code, script, style, textarea, mjx-container";
  const walker = document.createTreeWalker(
    document.body, NodeFilter.SHOW_TEXT);
  const parts = [];
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (el && !el.closest(skip) && el.checkVisibility())
      parts.push(walker.currentNode.data);
  }
  return parts.join(" ");
}"""

WIDGETS_DRAWN_JS = """(expected) => {
  // every widget-view script gets a sibling div.widget-subarea from the HTML
  // manager
  const areas = [...document.querySelectorAll("div.widget-subarea")];
  return areas.length >= expected &&
    areas.every(a => a.querySelector(".jupyter-widgets"));
}"""


def fail_on(errors: list[str], prefix: str = "") -> None:
    if errors:
        pytest.fail(
            prefix + "errors in the browser:\n  " + "\n  ".join(errors),
            pytrace=False,
        )


@pytest.mark.parametrize("docname", toc_pages())
def test_page_renders_offline(docname, browser, base_url, site):
    source = source_of(docname)
    markdown = markdown_text(source)
    problems: list[str] = []
    shot = SCREENSHOTS / (docname.replace("/", "_") + ".png")
    shot.unlink(missing_ok=True)

    def unexpected() -> list[str]:
        return [
            p
            for p in problems
            if not any(
                p.startswith(kind) and re.search(rx, p)
                for kind, rx, _ in ALLOWED
            )
        ]

    passed = False
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    # No network: anything not served by our 127.0.0.1 server is aborted (and
    # reported).
    offsite: list[str] = []

    def block(route):
        offsite.append(route.request.url)
        route.abort("blockedbyclient")

    context.route(lambda url: not url.startswith(base_url), block)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on(
        "console",
        lambda msg: (
            msg.type == "error"
            and problems.append(
                f"console: {msg.text} @ "
                f"{msg.location.get('url', '').replace(base_url, '/')}"
            )
        ),
    )
    page.on(
        "requestfailed",
        lambda req: problems.append(
            f"requestfailed: {req.url} ({req.failure})"
        ),
    )
    page.on(
        "response",
        lambda resp: (
            resp.status >= 400
            and problems.append(f"http {resp.status}: {resp.url}")
        ),
    )
    try:
        page.goto(base_url + docname + ".html", wait_until="load")
        fail_on(unexpected())  # fail fast, e.g. when a script did not load

        # (a) title
        heading = first_heading(markdown)
        assert heading in plain(page.title()), (
            f"title {page.title()!r} lacks the heading {heading!r}"
        )

        # (c) math: wait until MathJax has typeset the page
        if has_math(markdown) or page.evaluate("() => !!window.MathJax"):
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup "
                "&& MathJax.startup.promise"
            )
            page.evaluate("() => MathJax.startup.promise.then(() => true)")
        if has_math(markdown):
            assert page.locator("mjx-container").count() > 0, (
                "the source has math but nothing was typeset"
            )

        # (d) widgets
        if expected := displayed_widgets(source):
            page.wait_for_function(WIDGETS_DRAWN_JS, arg=expected)
            assert page.locator(".jupyter-widgets").count() >= expected
            assert page.locator(".jupyter-widgets-error-widget").count() == 0, (
                "a widget failed to render"
            )

        # let late requests (fonts) fail now, not unseen
        page.wait_for_load_state("networkidle")
        if page.evaluate(
            "() => !!(window.MathJax && MathJax.startup "
            "&& MathJax.startup.promise)"
        ):
            # widget labels typeset too
            page.evaluate("() => MathJax.startup.promise.then(() => true)")
        merrors = [m.text_content() for m in page.locator("mjx-merror").all()]
        assert not merrors, f"MathJax errors: {merrors}"
        raw = re.findall(
            r"\\\(.{0,40}|\\\[.{0,40}|\$\$.{0,40}|\\begin\{.{0,40}"
            # $..\cmd..$, e.g. a widget label
            r"|\$[^$\n]{0,40}\\[A-Za-z]+[^$\n]{0,40}\$",
            page.evaluate(VISIBLE_TEXT_JS),
        )
        assert not raw, f"raw TeX left in the visible text: {raw}"

        # (f) the kernel-free sliders, moved by keyboard and pointer
        expected_sliders = static_sliders(source)
        if is_chapter(docname):
            assert expected_sliders, "a chapter page without a static slider"
        sliders = page.locator(".dlc-slider")
        assert sliders.count() == expected_sliders, (
            f"{sliders.count()} sliders in the page, "
            f"{expected_sliders} in the notebook"
        )
        for k in range(expected_sliders):
            check_slider(page, sliders.nth(k), f"slider {k + 1}")

        # (g) accessibility: axe-core in the light and the dark theme (the
        # page follows the reader's system setting), and alt text that is a
        # sentence. The highlighted code's colours come from one style sheet
        # for the whole book: axe checks them on one chapter page, and
        # test_code_colours_have_4_5_to_1_contrast every token colour.
        code = docname == CODE_CONTRAST_PAGE
        violations = axe_violations(page, code=code)
        assert not violations, "axe-core:\n  " + "\n  ".join(violations)
        # colours are checked at rest: no transition may be caught halfway
        page.add_style_tag(content=NO_TRANSITIONS_CSS)
        page.emulate_media(color_scheme="dark")
        page.wait_for_function(
            "() => document.documentElement.dataset.theme === 'dark'"
        )
        page.evaluate(
            "() => new Promise(r => requestAnimationFrame("
            "() => requestAnimationFrame(r)))"
        )
        # only the contrast depends on the theme: the other rules ran above
        violations = axe_violations(page, rules=["color-contrast"], code=code)
        assert not violations, "axe-core, dark theme:\n  " + "\n  ".join(
            violations
        )
        bad_alts = page.evaluate(BAD_ALTS_JS, MIN_ALT)
        assert not bad_alts, f"images without a descriptive alt: {bad_alts}"

        weight = page_weight(site, docname)
        assert weight <= MAX_PAGE_BYTES, (
            f"the page weighs {weight / 1e6:.1f} MB (HTML and its figures)"
        )

        # (h) launch buttons of a notebook page
        if source.suffix == ".ipynb":
            check_launch_links(page, docname)

        # (b) errors, after the page has settled; only the explicit allow-list
        # passes; and no request left 127.0.0.1
        fail_on(unexpected())
        assert not offsite, f"requests off 127.0.0.1 (blocked): {offsite}"
        passed = True
    except PlaywrightTimeout as error:
        fail_on(unexpected(), f"{error.message}\n")
        raise
    finally:
        # (e) screenshot, also of a failing page (where it must not hide the
        # real error)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        full = not passed or os.environ.get("DLCOURSE_SCREENSHOTS") == "full"
        with contextlib.suppress(Exception):
            page.screenshot(path=shot, full_page=full)
        context.close()
    assert shot.is_file(), f"no screenshot written to {shot}"


CODE_COLOURS_JS = """(theme) => {
  // Every token colour of the code style sheet for this theme, with the
  // background that code blocks are drawn on.
  const pre = document.querySelector("div.highlight pre");
  const colours = [];
  for (const sheet of document.styleSheets) {
    let rules;
    try { rules = sheet.cssRules; } catch (e) { continue; }
    for (const rule of rules) {
      const sel = rule.selectorText || "";
      if (sel.startsWith(`html[data-theme="${theme}"] .highlight .`)
          && rule.style.color && rule.style.color !== "inherit")
        colours.push([sel, rule.style.color, rule.style.backgroundColor]);
    }
  }
  const style = getComputedStyle(pre);
  // the text outside any token (plain names, stream outputs) too
  colours.push(["div.highlight pre", style.color, ""]);
  return {background: style.backgroundColor, colours};
}"""


def _rgb(css: str) -> tuple[float, ...]:
    if css.startswith("#"):
        h = css[1:]
        h = "".join(c * 2 for c in h) if len(h) == 3 else h
        return tuple(int(h[i : i + 2], 16) for i in (0, 2, 4))
    values = re.findall(r"[\d.]+", css)
    assert len(values) == 3, f"not an opaque colour: {css}"
    return tuple(float(v) for v in values)


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two CSS colours (hex or rgb())."""

    def luminance(css):
        c = [v / 255 for v in _rgb(css)]
        c = [
            v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
            for v in c
        ]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_ratio_matches_wcag_examples():
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("rgb(119, 119, 119)", "#fff") == pytest.approx(
        4.48, abs=0.01
    )


def test_code_colours_have_4_5_to_1_contrast(browser, base_url, site):
    """Every token colour of the highlighted code, and its plain text, in
    both themes, against the background code blocks are drawn on: what the
    pages' axe runs leave out (they skip div.highlight, which holds code
    cells and text outputs; see test_page_renders_offline)."""
    assert CODE_CONTRAST_PAGE in toc_pages(), "CODE_CONTRAST_PAGE: not a page"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(base_url + CODE_CONTRAST_PAGE + ".html", wait_until="load")
        low = []
        for theme in ("light", "dark"):
            page.emulate_media(color_scheme=theme)
            page.wait_for_function(
                f"() => document.documentElement.dataset.theme === '{theme}'"
            )
            found = page.evaluate(CODE_COLOURS_JS, theme)
            assert len(found["colours"]) > 20, (theme, found)
            for selector, colour, own_background in found["colours"]:
                background = own_background or found["background"]
                ratio = contrast(colour, background)
                if ratio < MIN_CONTRAST:
                    low.append(
                        f"{selector}: {colour} on {background}, {ratio:.2f}"
                    )
        assert not low, "code colours below 4.5:1:\n  " + "\n  ".join(low)
    finally:
        context.close()


# ------------------------------------------------------- sliders, axe, launch
SLIDER_STATE_JS = """(root) => {
  // What the slider shows now: its position, the visible frame(s), labels.
  const input = root.querySelector("input[type=range]");
  const frames = [...root.querySelectorAll(".dlc-slider-frames img")];
  const shown = frames.filter(f => f.checkVisibility());
  const label = root.querySelector("label");
  return {
    value: Number(input.value), max: Number(input.max),
    frames: frames.length, shown: shown.map(f => frames.indexOf(f)),
    loaded: shown.every(f => f.complete && f.naturalWidth > 0),
    alt: shown.length ? shown[0].alt : "",
    output: root.querySelector("output").textContent,
    valuetext: input.getAttribute("aria-valuetext"),
    name: label ? label.textContent.trim() : "",
    labels: JSON.parse(root.dataset.labels),
  };
}"""


def check_slider(page, root, where: str) -> None:
    """Move the slider by keyboard, then by pointer; each move must show."""
    root.scroll_into_view_if_needed()
    before = root.evaluate(SLIDER_STATE_JS)
    assert before["frames"] == before["max"] + 1 >= 2, (where, before)
    assert before["name"], f"{where}: the range input has no label"
    check_frame(before, where + " as loaded")
    frames = root.locator(".dlc-slider-frames")
    moves = []
    # keyboard: one step with the arrow keys, from the focused control
    root.locator("input").focus()
    key = "ArrowRight" if before["value"] < before["max"] else "ArrowLeft"
    moves.append((f"key {key}", lambda: page.keyboard.press(key)))

    # pointer: a click at the far end of the track (away from where it is)
    def click_far_end():
        state = root.evaluate(SLIDER_STATE_JS)
        box = root.locator("input").bounding_box()
        x = 4 if state["value"] > state["max"] / 2 else box["width"] - 4
        root.locator("input").click(position={"x": x, "y": box["height"] / 2})

    moves.append(("pointer click", click_far_end))
    state = before
    for name, move in moves:
        pixels = frames.screenshot()
        move()
        after = root.evaluate(SLIDER_STATE_JS)
        assert after["value"] != state["value"], (
            f"{where}: {name} did not move it (still at {state['value']})"
        )
        check_frame(after, f"{where} after {name}")
        assert after["shown"] != state["shown"]
        assert frames.screenshot() != pixels, (
            f"{where}: {name} moved it but the figure did not change"
        )
        state = after


def check_frame(state: dict, where: str) -> None:
    label = state["labels"][state["value"]]
    assert state["shown"] == [state["value"]], (
        f"{where}: frames shown {state['shown']}, position {state['value']}"
    )
    assert state["loaded"], f"{where}: the frame did not load"
    assert state["output"] == label == state["valuetext"], (
        f"{where}: label {state['output']!r} and aria-valuetext "
        f"{state['valuetext']!r} should both be {label!r}"
    )
    assert len(state["alt"]) >= MIN_ALT, f"{where}: alt {state['alt']!r}"


def axe_violations(
    page, rules: list[str] | None = None, code: bool = True
) -> list[str]:
    """axe-core's failing violations on the page, one line each.

    All of axe's rules, or only those named in ``rules``; over the whole
    page, or (``code=False``) without the highlighted code blocks, whose
    thousands of token spans take most of axe's time.
    """
    assert AXE.is_file(), f"{AXE} missing: run scripts/vendor_assets.py"
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(path=str(AXE))
    options = {"resultTypes": ["violations"]}
    if rules is not None:
        options["runOnly"] = rules
    where = "document" if code else "{exclude: [['div.highlight']]}"
    results = page.evaluate(f"(options) => axe.run({where}, options)", options)
    return [
        f"{v['impact']} {v['id']}: {v['help']} ("
        + "; ".join(" ".join(n["target"]) for n in v["nodes"][:3])
        + ")"
        for v in results["violations"]
        if v["impact"] in AXE_FAIL_IMPACTS or v["id"] in AXE_FAIL_RULES
    ]


BAD_ALTS_JS = """(minimum) => [...document.querySelectorAll("article img")]
  .filter(img => img.checkVisibility())
  .map(img => img.getAttribute("alt") || "")
  .filter(alt => alt.length < minimum || /\\.(png|svg|jpe?g)$/.test(alt))"""


def check_launch_links(page, docname: str) -> None:
    repo, branch = repository()
    notebook = f"{docname}.ipynb"
    assert (REPO / notebook).is_file()
    expected = {
        "Binder": f"https://mybinder.org/v2/gh/{repo}/{branch}"
        f"?urlpath=lab/tree/{notebook}",
        "Colab": f"https://colab.research.google.com/github/{repo}/blob/"
        f"{branch}/{notebook}",
    }
    hrefs = page.evaluate(
        "() => [...document.querySelectorAll('a[href]')].map(a => a.href)"
    )
    for name, url in expected.items():
        assert url in hrefs, f"no {name} launch link {url}"


def page_weight(site: Path, docname: str) -> int:
    """Bytes of the page's HTML and of the figures (_images/) it shows.

    The theme, MathJax and the widget manager are shared by every page (and
    cached by the browser), so they are not counted.
    """
    page = site / f"{docname}.html"
    text = page.read_text(encoding="utf8")
    images = {
        (page.parent / src).resolve()
        for src in re.findall(r'<img [^>]*src="([^"]+)"', text)
        if "_images/" in src and not src.startswith(("data:", "http"))
    }
    return page.stat().st_size + sum(p.stat().st_size for p in images)
