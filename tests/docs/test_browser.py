"""The documentation site in a real browser (Debian's Chromium, driven by Playwright), and an example's reference pages.

The site is built strictly into a temporary folder and served over HTTP on a loopback port.
Every page opens without a console error or a failed request, and nothing is fetched from
another host (no web fonts, no repository badge); the nav and the search work; every link of
every page leads to a page that answers 200 and, for a `#fragment`, holds an element with that
id. Then an example server's `/errors/` reference pages pass the same checks.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, Response, sync_playwright

from tests.docs.support import ROOT
from tests.support.servers import uvicorn

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK = {"127.0.0.1", "localhost"}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")


@dataclass
class Built:
    folder: Path
    strict_failure: str | None  # mkdocs' warnings when the strict build failed (the site is then built without it)


@dataclass
class Seen:
    """What the browser met: problems as (page, what) pairs, every request's URL, each page's ids and links."""

    problems: list[tuple[str, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    ids: dict[str, set[str]] = field(default_factory=dict)
    links: dict[str, list[str]] = field(default_factory=dict)
    current: str = ""

    def watch(self, context: BrowserContext, page: Page) -> None:
        context.on("request", self._request)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append((self.current, f"script error: {error}")))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        if _favicon_probe(message.location.get("url", "")):
            return
        if message.type in ("error", "warning"):
            self.problems.append((self.current, f"console {message.type}: {message.text} ({message.location})"))

    def _failed(self, request: Request) -> None:
        if request.failure == "net::ERR_ABORTED":  # cut short by the next page.goto (a request to another
            return  # host still shows in `requests`; a missing file shows as its 404 response)
        self.problems.append((self.current, f"request failed: {request.url} ({request.failure})"))

    def _response(self, response: Response) -> None:
        if response.status >= 400 and not _favicon_probe(response.url):
            self.problems.append((self.current, f"{response.status} for {response.url}"))

    def reset(self) -> None:
        """Forget what earlier tests saw (the page and its listeners are reused)."""
        self.problems.clear()
        self.requests.clear()
        self.ids.clear()
        self.links.clear()

    def report(self) -> str:
        return "\n".join(f"{where}: {what}" for where, what in self.problems)


def _favicon_probe(url: str) -> bool:
    """The browser's own request for /favicon.ico, made for a page that names no icon (the standalone
    reference pages): no page asked for it."""
    return urlsplit(url).path == "/favicon.ico"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    folder = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    mkdocs = str(Path(sys.executable).parent / "mkdocs")
    strict = subprocess.run(
        [mkdocs, "build", "--strict", "-d", str(folder)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if strict.returncode == 0:
        return Built(folder, None)
    warnings = "\n".join(line for line in strict.stderr.splitlines() if not line.startswith("INFO"))
    # built again without --strict, so the browser still checks every page (and reports every broken link)
    lax = subprocess.run(
        [mkdocs, "build", "-d", str(folder)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert lax.returncode == 0, lax.stderr
    return Built(folder, warnings or strict.stderr)


@pytest.fixture(scope="module")
def site(built: Built) -> Iterator[str]:
    """The built site over HTTP on a free loopback port (a thread running http.server)."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # (quiet)
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", 0), functools.partial(Handler, directory=str(built.folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrowserContext, Page, Seen]]:
    """One Chromium with a fresh profile, and one page reused by every test."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            args=ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
            service_workers="block",
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(10_000)
            seen = Seen()
            seen.watch(context, page)
            yield context, page, seen
        finally:
            context.close()


def html_pages(folder: Path) -> list[str]:
    """Every HTML page of the site, as a path below its root (`guides/rate-limits/`), 404.html aside."""
    pages = []
    for path in sorted(folder.rglob("*.html")):
        relative = path.relative_to(folder).as_posix()
        if relative == "404.html":
            continue
        pages.append(relative.removesuffix("index.html"))
    return pages


def visit(page: Page, seen: Seen, url: str) -> None:
    """Open `url`, then record its element ids and its links' absolute URLs."""
    seen.current = url
    response = page.goto(url, wait_until="load")
    if response is None or response.status != 200:
        seen.problems.append((url, f"answered {response and response.status}"))
        return
    key = urldefrag(page.url)[0]
    seen.ids[key] = set(page.eval_on_selector_all("[id], a[name]", "els => els.map(e => e.id || e.name)"))
    seen.links[key] = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")


def broken_links(seen: Seen, base: str, page: Page) -> list[tuple[str, str]]:
    """Every same-site link that does not answer 200, or whose `#fragment` names no element of its target."""
    broken = []
    statuses: dict[str, int] = {}
    client = httpx.Client(trust_env=False, follow_redirects=True, timeout=10)
    for source, links in list(seen.links.items()):
        for link in links:
            if not link.startswith(base):
                continue  # another host: checked by nothing here (no network), fetched by no page
            target, fragment = urldefrag(link)
            if target not in statuses:
                statuses[target] = client.get(target).status_code
            if statuses[target] != 200:
                broken.append((source, f"{link}: {statuses[target]}"))
                continue
            if not fragment:
                continue
            if target not in seen.ids and _is_html(target):
                visit(page, seen, target)
            if unquote(fragment) not in seen.ids.get(target, set()):
                broken.append((source, f"{link}: no element with id {unquote(fragment)!r} on {target}"))
    client.close()
    return broken


def title(page: Page) -> str:
    """The page's h1, without its permalink sign."""
    return str(
        page.eval_on_selector(
            "h1",
            "h => Array.from(h.childNodes).filter(n => !(n.classList && n.classList.contains('headerlink')))"
            ".map(n => n.textContent).join('').trim()",
        )
    )


def _is_html(url: str) -> bool:
    path = urlsplit(url).path
    return path.endswith(("/", ".html"))


def test_every_page_opens_cleanly_and_every_link_resolves(
    built: Built, site: str, browser: tuple[BrowserContext, Page, Seen]
) -> None:
    _, page, seen = browser
    seen.reset()
    pages = html_pages(built.folder)
    assert "" in pages and "reference/api/" in pages and "architecture/" in pages
    for path in pages:
        visit(page, seen, site + path)
    broken = broken_links(seen, site, page)
    elsewhere = sorted({u for u in seen.requests if urlsplit(u).hostname not in LOOPBACK and not u.startswith("data:")})

    report = []
    if built.strict_failure:
        report.append(f"mkdocs build --strict failed:\n{built.strict_failure}")
    if seen.problems:
        report.append("console errors and failed requests:\n" + seen.report())
    if broken:
        report.append("broken links:\n" + "\n".join(f"{where}: {what}" for where, what in broken))
    if elsewhere:
        report.append("requests to another host:\n" + "\n".join(elsewhere))
    assert not report, "\n\n".join(report)
    assert len(seen.links) >= len(pages)


class _Loads(html.parser.HTMLParser):
    """The URLs a page loads by itself: scripts, images, frames, and stylesheets, icons, preloads."""

    LOADING_RELS = frozenset(
        {"stylesheet", "icon", "preload", "modulepreload", "manifest", "preconnect", "dns-prefetch"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "audio", "video") and values.get("src"):
            self.urls.append(values["src"] or "")
        if tag == "link" and set((values.get("rel") or "").split()) & self.LOADING_RELS:
            self.urls.append(values.get("href") or "")


def test_the_built_site_loads_nothing_from_another_host(built: Built) -> None:
    """No page names a font, script, stylesheet or image of another host (material's Google Fonts are off,
    and its header's repository link asks api.github.com for nothing: overrides/partials/source.html)."""
    offenders = []
    for path in sorted(built.folder.rglob("*.html")):
        parser = _Loads()
        parser.feed(path.read_text(errors="replace"))
        offenders += [
            f"{path.relative_to(built.folder)}: {url}" for url in parser.urls if re.match(r"(https?:)?//", url)
        ]
        if path.name == "index.html":  # a material page: its stylesheets and scripts, from the site itself
            assert any(url.endswith(".css") for url in parser.urls) and any(url.endswith(".js") for url in parser.urls)
    assert offenders == []


def test_the_nav_leads_to_a_page(site: str, browser: tuple[BrowserContext, Page, Seen]) -> None:
    _, page, seen = browser
    seen.reset()
    visit(page, seen, site)
    before = title(page)
    page.locator("nav.md-nav--primary a.md-nav__link[href$='reference/api/']").first.click()
    page.wait_for_url(site + "reference/api/")
    assert title(page) == "API reference" != before
    page.locator("nav.md-nav--primary a.md-nav__link[href$='architecture/']").first.click()
    page.wait_for_url(site + "architecture/")
    assert title(page) == "Architecture"
    assert not seen.problems, seen.report()


def test_the_search_finds_a_page(site: str, browser: tuple[BrowserContext, Page, Seen]) -> None:
    _, page, seen = browser
    seen.reset()
    visit(page, seen, site)
    home = title(page)
    box = page.locator("input.md-search__input")
    box.click()
    box.press_sequentially("Idempotency")  # (material searches as keys are typed)
    results = page.locator("a.md-search-result__link")
    results.first.wait_for(state="visible")
    assert results.count() >= 2
    href = results.first.get_attribute("href")
    assert href is not None and href.startswith(site) and urlsplit(href).path != "/", href
    results.first.click()
    page.wait_for_url(href)
    assert page.locator("h1").count() == 1 and title(page) != home
    assert "idempotency" in page.locator("article").inner_text().lower()
    assert not seen.problems, seen.report()


def test_an_example_servers_reference_pages(browser: tuple[BrowserContext, Page, Seen]) -> None:
    """examples/envelope_api.py serves its catalog's pages at /errors/: they open cleanly, their anchors resolve."""
    _, page, seen = browser
    seen.reset()
    with uvicorn("examples.envelope_api:app", env={"REDIS_URL": "memory://"}) as server:
        base = server.url + "/"
        whole = server.url + "/errors/"
        visit(page, seen, whole)
        assert page.locator("h1").count() == 1
        anchors = [link for link in seen.links[whole] if urldefrag(link)[0] == whole and urldefrag(link)[1]]
        assert anchors, "the whole page has no in-page anchor (its quick-reference table links its sections)"
        one = server.url + "/errors/quota_exceeded"
        visit(page, seen, one)
        assert page.locator("h1").count() == 1
        broken = broken_links(seen, base, page)
        elsewhere = sorted({u for u in seen.requests if urlsplit(u).hostname not in LOOPBACK})
        assert not broken, "\n".join(f"{where}: {what}" for where, what in broken)
        assert not seen.problems, seen.report()
        assert not elsewhere, elsewhere
