"""Browser tests: Playwright (sync API) driving Debian's headless Chromium
against the real production server (`flask --app wsgi serve`, started by
tests/liveserver.py in a child process with its own data folder).

Every page a test visits is checked with axe-core: a test calls `axe(page)`
after each page load (and after opening anything that changes the page, such
as the inline reply composer). A guard fails the test if a page was visited
(a new URL loaded in the main frame) and never checked.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.liveserver import NO_MEDIA, LiveServer, make_server

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]
AXE_JS = HERE / "vendor" / "axe-core" / "axe.min.js"
PASSWORD = "heather moorland lantern 42"
ADMIN_EMAIL = "alex.admin@example.police.uk"
ADMIN_NAME = "Alex Admin"
# Every axe-core finding fails a test, whatever its impact (minor ones too: a chat log with the wrong role is
# "minor" to axe and a real problem to a screen-reader user). A rule may be allowed only with its reason here.
AXE_ALLOWED: dict[str, str] = {}

expect.set_options(timeout=10_000)


def pytest_collection_modifyitems(items):
    for item in items:
        if str(item.fspath).startswith(str(HERE)):
            item.add_marker(pytest.mark.browser)


# -- browser --------------------------------------------------------------------------------------------------------

# One browser per test module, not per session: a module with browsers of its own (launched
# with other flags) can then start Playwright itself; two sync Playwrights cannot run at once.
@pytest.fixture(scope="module")
def browser() -> Browser:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


# -- servers --------------------------------------------------------------------------------------------------------
# Three real servers, each in a child process with its own data folder: `site` (an
# administrator made by the CLI; most flows share it), `fresh_site` (nothing in it: the
# setup page) and `demo_site` (`flask demo`: the README screenshots). The ones a run
# needs start side by side in background threads when its first browser test starts.



def start_server(tmp_path_factory, name: str, extra_env: dict | None = None) -> LiveServer:
    return _start(Path(tmp_path_factory.mktemp(name)), extra_env)


def _start(data_dir: Path, extra_env: dict | None = None) -> LiveServer:
    try:
        return make_server(data_dir, extra_env=extra_env).start()
    except subprocess.CalledProcessError as err:  # show why `flask db upgrade` failed
        raise RuntimeError(f"{err.cmd[3:]} failed:\n{err.stdout}\n{err.stderr[-3000:]}") from None


def stop_server(server: LiveServer) -> None:
    server.kill()  # its data folder is thrown away: no need to wait for a graceful stop


class Prestart:
    def __init__(self, name: str, prepare=None, extra_env: dict | None = None):
        self.name, self.prepare, self.extra_env = name, prepare, extra_env
        self.thread: threading.Thread | None = None
        self.server: LiveServer | None = None
        self.error: BaseException | None = None
        self.data_dir: Path | None = None

    def begin(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name=f"start-{self.name}", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        try:
            self.data_dir = Path(tempfile.mkdtemp(prefix=f"collab-browser-{self.name}-"))
            self.server = _start(self.data_dir, self.extra_env)
            if self.prepare:
                self.prepare(self.server)
        except Exception as err:  # noqa: BLE001 -- reported by get(), in the test that needs this server
            self.error = err

    def get(self) -> LiveServer:
        self.begin()
        self.thread.join()
        if self.error:
            raise self.error
        return self.server

    def stop(self) -> None:
        if self.thread:
            self.thread.join()
        if self.server:
            stop_server(self.server)
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _make_admin(server: LiveServer) -> None:
    server.flask("users", "create", "--email", ADMIN_EMAIL, "--name", ADMIN_NAME, "--admin",
                 "--org", "Hampshire Constabulary", "--job-title", "Inspector", input=PASSWORD + "\n")


def _load_demo(server: LiveServer) -> None:
    server.flask("demo", "--password", PASSWORD)


# Every browser signs in from 127.0.0.1, so the shared server allows more sign-ins per
# address than the default 10 a minute (the limit itself is tested in tests/test_auth*).
SHARED_ENV = {"COLLAB_LOGIN_LIMIT": "100 per minute"}

SERVERS = {
    "site": Prestart("site", prepare=_make_admin, extra_env=SHARED_ENV),
    "fresh_site": Prestart("fresh", extra_env=NO_MEDIA),
    "demo_site": Prestart("demo", prepare=_load_demo, extra_env=NO_MEDIA),
}


@pytest.fixture(scope="session", autouse=True)
def _start_servers_early(request):
    """Begin starting every server the collected browser tests use, all at once."""
    for item in request.session.items:
        for name in getattr(item, "fixturenames", ()):
            if name in SERVERS and str(item.fspath).startswith(str(HERE)):
                SERVERS[name].begin()
    yield
    for slot in SERVERS.values():
        slot.stop()


@pytest.fixture(scope="session")
def site() -> LiveServer:
    """The server most flows share, with one administrator made by the CLI."""
    return SERVERS["site"].get()


@pytest.fixture(scope="session")
def fresh_site() -> LiveServer:
    """A fresh install: no account yet."""
    return SERVERS["fresh_site"].get()


@pytest.fixture(scope="session")
def demo_site() -> LiveServer:
    """An install with the demo data, every account's password being PASSWORD."""
    return SERVERS["demo_site"].get()


def api(server: LiveServer, token: str, method: str, path: str, body: dict | None = None) -> dict:
    """Arrange data through the public JSON API (only for what a test is not about)."""
    req = urllib.request.Request(server.url + "/api/v1" + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as err:   # say why, and what the server logged, not only the status
        raise AssertionError(f"{method} {path} answered {err.code}: {err.read()[:2000]!r}\n"
                             f"server log (end):\n{server.log_path.read_text(errors='replace')[-3000:]}") from None


def new_token(server: LiveServer, email: str) -> str:
    return server.flask("tokens", "create", "--email", email).stdout.strip().splitlines()[-1]


# -- accessibility --------------------------------------------------------------------------------------------------

_AXE_SOURCE: str | None = None


def _axe_source() -> str:
    global _AXE_SOURCE
    if _AXE_SOURCE is None:
        _AXE_SOURCE = AXE_JS.read_text(encoding="utf-8")
    return _AXE_SOURCE


def _page_key(url: str) -> str:
    return urldefrag(url)[0]


def format_violations(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:8]:
            target = " ".join(str(t) for t in node["target"])
            lines.append(f"    at {target}")
            lines.append(f"       {node['html'][:200]}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n       ")
            if summary:
                lines.append(f"       {summary}")
        if len(v["nodes"]) > 8:
            lines.append(f"    … and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


def axe(page: Page, context: str = "") -> list[dict]:
    """Run axe-core on the page as it is now; fail on any violation (AXE_ALLOWED excepted).

    The app's CSP is `script-src 'self'`, so `page.add_script_tag()` (which
    injects an inline <script>) is refused by the browser. `page.evaluate()`
    runs through the DevTools protocol, which CSP does not govern, so the
    vendored axe source is evaluated that way; the page and its CSP stay
    exactly as users get them (no `bypass_csp`, which would also hide CSP
    mistakes in our own pages)."""
    page.wait_for_load_state("load")
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    result = page.evaluate("""async () => {
        // All of axe's default rules, plus WCAG 2.2's target size (2.5.8, AA), which axe leaves off by default.
        const r = await axe.run(document, {resultTypes: ['violations'], rules: {'target-size': {enabled: true}}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
            nodes: v.nodes.map(n => ({target: n.target, html: n.html, failureSummary: n.failureSummary}))}));
    }""")
    where = f"{page.url}{' (' + context + ')' if context else ''}"
    checked = getattr(page, "_axe_checked", None)
    if checked is not None:
        checked.add(_page_key(page.url))
    bad = [v for v in result if v["id"] not in AXE_ALLOWED]
    if bad:
        pytest.fail(f"axe-core found accessibility violations on {where}:\n"
                    f"{format_violations(bad)}", pytrace=False)
    return result


# -- pages ----------------------------------------------------------------------------------------------------------

# Signed-in browser state per (server, account): each account signs in through the
# form once per run, and later pages start signed in.
_SIGNED_IN: dict[tuple[str, str], dict] = {}


class Pages:
    """Opens browser contexts and pages for one test, and at its end checks that
    axe ran on every page that was loaded."""

    def __init__(self, browser: Browser):
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.pages: list[Page] = []

    def open(self, server: LiveServer, *, email: str | None = None, password: str = PASSWORD,
             width: int = 1200, height: int = 900, timezone_id: str = "Europe/London") -> Page:
        state = _SIGNED_IN.get((server.url, email)) if email else None
        ctx = self.browser.new_context(viewport={"width": width, "height": height}, base_url=server.url,
                                       locale="en-GB", timezone_id=timezone_id, storage_state=state)
        ctx.set_default_timeout(15_000)
        self.contexts.append(ctx)
        page = ctx.new_page()
        page._axe_checked = set()  # type: ignore[attr-defined]
        page._visited = []  # type: ignore[attr-defined]
        page._errors = []  # type: ignore[attr-defined]

        def on_nav(frame):
            if frame == page.main_frame and frame.url.startswith("http"):
                key = _page_key(frame.url)
                if key not in page._visited:  # type: ignore[attr-defined]
                    page._visited.append(key)  # type: ignore[attr-defined]

        page.on("framenavigated", on_nav)
        # Script errors, CSP refusals and failed sub-resources (scripts, styles,
        # images) fail the test; an error status of a page itself is tested where it matters.
        errors = page._errors  # type: ignore[attr-defined]
        page.on("pageerror", lambda err: errors.append(f"page error: {err}"))
        page.on("console", lambda msg: msg.type == "error" and not msg.text.startswith("Failed to load resource")
                and errors.append(f"console: {msg.text}"))
        page.on("response", lambda resp: resp.status >= 400 and resp.request.resource_type != "document"
                and errors.append(f"{resp.status} for {resp.request.resource_type} {resp.url}"))
        # net::ERR_ABORTED is the browser cancelling a load because the page moved on (a click
        # navigated away while a thumbnail was still loading): not a failure of the app.
        page.on("requestfailed", lambda req: req.resource_type != "document"
                and "ERR_ABORTED" not in (req.failure or "")
                and errors.append(f"request failed: {req.url} ({req.failure})"))
        self.pages.append(page)
        if email and state is None:
            sign_in(page, email, password)
            _SIGNED_IN[(server.url, email)] = ctx.storage_state()
        elif email:  # already signed in: land where signing in lands
            page.goto("/rooms")
            expect(page).to_have_url(re.compile(r"/rooms$"))
            axe(page)
        return page

    def unchecked(self) -> list[str]:
        out = []
        for page in self.pages:
            out += [u for u in page._visited if u not in page._axe_checked]  # type: ignore[attr-defined]
        return out

    def script_errors(self) -> list[str]:
        return [e for page in self.pages for e in page._errors]  # type: ignore[attr-defined]

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


def checked_pages(browser, request):
    """Pages in `browser` for one test; after a passing test every page visited must have had an
    axe-core check and no JavaScript error. The body of every `pages`-like fixture."""
    p = Pages(browser)
    yield p
    try:
        failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
        if not failed:
            missing = p.unchecked()
            assert not missing, f"pages visited without an axe-core check: {missing}"
            errors = p.script_errors()
            assert not errors, f"JavaScript errors in the browser: {errors}"
    finally:
        p.close()


@pytest.fixture
def pages(browser, request):
    yield from checked_pages(browser, request)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    axe(page)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/rooms$"))
    axe(page)


@pytest.fixture(scope="session")
def admin_token(site) -> str:
    return new_token(site, ADMIN_EMAIL)


def sent_post(page: Page, text: str):
    """The post containing `text` once it is on the thread page, however it got there:
    sent over the live connection (live.js places it without a reload) or by the
    ordinary form (the page reloads at its anchor). Returns (locator, post id)."""
    post = page.locator("article.post").filter(has_text=text)
    expect(post).to_have_count(1)
    page.wait_for_load_state("load")
    return post, int(post.get_attribute("data-post-id"))


def png_bytes(width: int = 640, height: int = 400) -> bytes:
    """A real PNG made with Pillow: a few coloured bands and a label."""
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (29, 63, 114))
    draw = ImageDraw.Draw(img)
    for i, colour in enumerate([(255, 191, 71), (23, 97, 58), (244, 246, 249)]):
        draw.rectangle([0, height * (i + 1) // 4, width, height * (i + 1) // 4 + 30], fill=colour)
    draw.text((20, 20), "Patrol map, Southampton", fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
