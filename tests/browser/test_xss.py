"""XSS corpus (issue 7): a few hundred payloads, generated from families, stored through
the real services of a real server (tests/liveserver.py) in every field that is ever
displayed -- account names and job titles, room names and descriptions, thread titles,
post bodies, attachment filenames -- plus SVG and HTML uploads. Headless Chromium then
opens every page that shows them and asserts that no dialog opened and that
`window.__xss` was never set; template-injection strings must appear literally.

Many payloads share few pages, so the whole file stays well under a minute and a half.
"""
from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import quote

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import ADMIN_EMAIL, axe
from tests.liveserver import ROOT

# -- the corpus -------------------------------------------------------------------------------------------------------

_JS = "window.__xss=1;alert(1)"
_B64 = "PHNjcmlwdD53aW5kb3cuX194c3M9MTthbGVydCgxKTwvc2NyaXB0Pg=="  # <script>window.__xss=1;alert(1)</script>

# Script-carrying URLs: case, encoding, whitespace and entity variants.
URLS = [
    f"javascript:{_JS}",
    f"JaVaScRiPt:{_JS}",
    f"JAVASCRIPT:{_JS}",
    f" javascript:{_JS}",
    f"java\tscript:{_JS}",
    f"java&#x09;script:{_JS}",
    f"java&#10;script:{_JS}",
    f"&#106;avascript:{_JS}",
    f"&#x6A;&#x61;vascript:{_JS}",
    f"&#0000106avascript:{_JS}",
    f"javascript&colon;{_JS}",
    f"javascript&#58;{_JS}",
    f"%6Aavascript:{_JS}",
    f"javascript://%0a{_JS}",
    f"javascript:/**/{_JS}",
    "javascript:alert%281%29",
    f"data:text/html;base64,{_B64}",
    "data:text/html,<script>window.__xss=1;alert(1)</script>",
    "DATA:text/html,%3Cscript%3Ealert(1)%3C/script%3E",
    "data:image/svg+xml,<svg onload=alert(1)>",
    f"data:image/svg+xml;base64,{_B64}",
    "vbscript:msgbox(1)",
    "VBScript:MsgBox(1)",
    "\\javascript:alert(1)",
]
MD_FORMS = [
    "[click]({u})",
    "![pic]({u})",
    "[click]({u} \"t\")",
    "[ref link][r]\n\n[r]: {u}",
    "<{u}>",
]

RAW_HTML = [
    "<script>window.__xss=1;alert(1)</script>",
    "<ScRiPt>alert(1)</sCrIpT>",
    "<img src=x onerror=alert(1)>",
    "<img src=x onerror=\"window.__xss=1\">",
    "<IMG SRC=x OnErRoR=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg/onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><a xlink:href=\"javascript:alert(1)\"><text x=20 y=20>svg link</text></a></svg>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<svg><set attributeName=onload to=alert(1)>",
    "<svg><foreignObject><img src=x onerror=alert(1)></foreignObject></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<math href=\"javascript:alert(1)\">math link</math>",
    "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>x</maction></math>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<iframe srcdoc=\"<script>parent.__xss=1</script>\"></iframe>",
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<a href=\"javascript:alert(1)\">raw link</a>",
    "<a href=\" javascript:alert(1)\">raw link 2</a>",
    "<form action=javascript:alert(1)><button>go</button></form>",
    "<input autofocus onfocus=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<audio src=x onerror=alert(1)>",
    "<object data=\"javascript:alert(1)\"></object>",
    f"<object data=\"data:text/html;base64,{_B64}\"></object>",
    "<embed src=javascript:alert(1)>",
    "<meta http-equiv=refresh content=\"0;url=javascript:alert(1)\">",
    "<base href=\"javascript:alert(1)//\">",
    "<style>@import 'javascript:alert(1)';</style>",
    "<link rel=stylesheet href=\"javascript:alert(1)\">",
    "<marquee onstart=alert(1)>m</marquee>",
    "<div onmouseover=alert(1)>hover</div>",
    "<span onclick=alert(1) class=x>tap</span>",
    "<p style=\"background:url(javascript:alert(1))\">styled</p>",
    "<scr<script>ipt>alert(1)</script>",
    "<<script>script>alert(1)<</script>/script>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "<!--<img src=\"--><img src=x onerror=alert(1)//\">",
    "<template><script>alert(1)</script></template>",
    "<textarea></textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    "<isindex action=javascript:alert(1) type=image>",
    "<table background=\"javascript:alert(1)\"><tr><td>t</td></tr></table>",
    "<img src=\"x` `<script>alert(1)</script>\"` `>",
    "<a href=\"&#106;avascript:alert(1)\">entity link</a>",
    "<img src=x:alert(1) onerror=eval(src)>",
    "<keygen autofocus onfocus=alert(1)>",
    "<select autofocus onfocus=alert(1)>",
]
# The same markup, escaped once: must be shown as text, never decoded into markup.
ESCAPED = [h.replace("<", "&lt;").replace(">", "&gt;") for h in RAW_HTML[:20]]
# In Markdown contexts that end up in attributes (link titles, image alts) and code.
IN_ATTRS = [f"[a](https://example.org \"{h.replace(chr(34), chr(39))}\")" for h in RAW_HTML[:12]]
IN_CODE = ["`" + RAW_HTML[0] + "`", "```\n" + RAW_HTML[2] + "\n```", "    " + RAW_HTML[5]]

ATTR_BREAKERS = [
    "\"><img src=x onerror=alert(1)>",
    "'><svg onload=alert(1)>",
    "\" onmouseover=\"alert(1)",
    "' onfocus='alert(1)' autofocus='",
    "`onerror=alert(1)`",
    "\" autofocus onfocus=\"window.__xss=1",
    "</textarea><script>alert(1)</script>",
    "</script><script>alert(1)</script>",
    "</style><script>alert(1)</script>",
    "\"-alert(1)-\"",
    "';alert(1);//",
    "\\\";alert(1);//",
    "</option></select><img src=x onerror=alert(1)>",
    "\"><iframe src=javascript:alert(1)>",
]
TEMPLATES = [
    "{{7*7}}",
    "${7*7}",
    "#{7*7}",
    "<%= 7*7 %>",
    "{{=7*7}}",
    "${{7*7}}",
    "[[7*7]]",
    "{% print(7*7) %}",
    "{{constructor.constructor('window.__xss=1')()}}",
    "{{config}}",
    "{{ ''.__class__.__mro__ }}",
    "@{7*7}",
]


def corpus() -> list[str]:
    out = [form.format(u=u) for u in URLS for form in MD_FORMS]
    out += RAW_HTML + ESCAPED + IN_ATTRS + IN_CODE + ATTR_BREAKERS + TEMPLATES
    return out


PAYLOADS = corpus()
MARKED = [f"xm{i:03d}q {p}" for i, p in enumerate(PAYLOADS)]  # each printed with a unique marker
SHORT = [m for m in MARKED if len(m) <= 110 and "\n" not in m]  # fits names, titles, filenames


def _spread(items: list[str], n: int) -> list[str]:
    """n items spread over the whole list (every family is represented)."""
    step = max(1, len(items) // n)
    return items[::step][:n]


NAMES = _spread(SHORT, 10)
ROOMS = _spread(SHORT[3:], 8)
TITLES = _spread(SHORT[1:], 40) + [m for m in SHORT if any(t in m for t in TEMPLATES)]
FILES = [m.replace("/", "_") for m in _spread(SHORT[2:], 10)]
PER_POST = 12

SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="window.__xss=1;alert(1)">'
       b'<script>window.__xss=1;alert(1)</script></svg>')
HTML = b"<!doctype html><html><body><script>window.__xss=1;alert(1)</script><img src=x onerror=alert(1)></body></html>"

SEED = r"""
import io, json, sys
data = json.loads(sys.stdin.read())
from collab import create_app
from auth import services as auth
from auth.services import find_user_by_email
from rooms import services as rooms
from rooms import posts as room_posts
app = create_app()
with app.app_context():
    admin = find_user_by_email(data["admin"])
    room = rooms.create_room(admin, name=data["room_name"], description=data["room_desc"], visibility="private")
    others = [rooms.create_room(admin, name=n, description=n, visibility="private").id for n in data["rooms"]]
    users = []
    for i, name in enumerate(data["names"]):
        u = auth.create_user(email=f"xss{i}@example.police.uk", name=name, job_title=name,
                             password=data["password"], organisation_name="Hampshire Constabulary")
        rooms.add_member(admin, room.id, user_id=u.id, role="member")
        users.append(u.id)
    corpus = room_posts.create_thread(admin, room.id, title=data["corpus_title"], body="xsscorpus opening post")
    for chunk in data["bodies"]:
        room_posts.create_post(admin, corpus.id, body=chunk)
    for title in data["titles"]:
        room_posts.create_thread(admin, room.id, title=title, body="xsstitle " + title)
    from auth.models import User
    from collab.extensions import db
    for uid, name in zip(users, data["names"]):
        u = db.session.get(User, uid)
        room_posts.create_post(u, corpus.id, body="xssreply " + name)
    files = [(f, io.BytesIO(b"plain text " + f.encode())) for f in data["files"]]
    files += [("drawing.svg", io.BytesIO(data["svg"].encode())), ("page.html", io.BytesIO(data["html"].encode())),
              ("page.htm", io.BytesIO(data["html"].encode())), ("image.png", io.BytesIO(data["svg"].encode()))]
    atts = []
    for i in range(0, len(files), 7):
        post, _ = room_posts.create_post(admin, corpus.id, body="xssfiles", uploads=files[i:i + 7])
        atts += [{"id": a.id, "filename": a.filename} for a in post.attachments]
    print(json.dumps({"room": room.id, "rooms": others, "thread": corpus.id, "attachments": atts}))
"""


@pytest.fixture(scope="module")
def seeded(site):
    from tests.browser.conftest import PASSWORD

    bodies = ["\n\n".join(MARKED[i:i + PER_POST]) for i in range(0, len(MARKED), PER_POST)]
    data = {"admin": ADMIN_EMAIL, "password": PASSWORD, "room_name": SHORT[0], "room_desc": "\n\n".join(SHORT[:20]),
            "rooms": ROOMS, "names": NAMES, "titles": TITLES, "bodies": bodies, "files": FILES,
            "corpus_title": "xsscorpus " + SHORT[-1], "svg": SVG.decode(), "html": HTML.decode()}
    proc = subprocess.run([sys.executable, "-c", SEED], cwd=ROOT, env=site.env, input=json.dumps(data),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- checks ---------------------------------------------------------------------------------------------------------

def _watch(page: Page) -> list[str]:
    fired: list[str] = []

    def on_dialog(dialog):
        fired.append(f"{dialog.type}: {dialog.message} on {page.url}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return fired


def _visit(page: Page, path: str, fired: list[str], expect_text: list[str] = ()) -> str:
    resp = page.goto(path)
    assert resp is not None and resp.status == 200, (path, resp and resp.status)
    page.wait_for_load_state("load")
    page.wait_for_timeout(150)  # give onload/onerror/autofocus handlers their chance
    assert not fired, fired
    assert page.evaluate("typeof window.__xss") == "undefined", f"window.__xss was set on {path}"
    assert page.evaluate("Array.from(document.querySelectorAll('script:not([src])')).length") == 0, path
    # No element carries an event-handler attribute, and no link or frame a script URL.
    bad = page.evaluate("""() => {
        const out = [];
        for (const el of document.querySelectorAll('*')) {
            for (const a of el.attributes) {
                // As the WHATWG URL parser reads it: C0 controls and spaces trimmed, tabs and newlines removed.
                const v = a.value.replace(/^[\\x00-\\x20]+|[\\x00-\\x20]+$/g, '').replace(/[\\t\\n\\r]/g, '')
                    .toLowerCase();
                if (a.name.startsWith('on') || /^(javascript|vbscript|data):/.test(v) && a.name !== 'content')
                    out.push(el.tagName + ' ' + a.name + '=' + a.value.slice(0, 80));
            }
        }
        return out;
    }""")
    assert not bad, f"dangerous attributes on {path}: {bad[:10]}"
    axe(page)
    # Payload image URLs that the sanitiser kept are inert relative paths (`java  script:...`,
    # `%6Aavascript:...`): the browser asks this server for them and gets a 404, which is expected.
    errors = page._errors  # type: ignore[attr-defined]
    origin = "/".join(page.url.split("/", 3)[:3])
    errors[:] = [e for e in errors if not e.startswith(f"404 for image {origin}/")]
    text = page.inner_text("body")
    missing = [t for t in expect_text if t not in text]
    assert not missing, f"{path} does not show {len(missing)} expected strings, e.g. {missing[:3]}"
    return text


def test_corpus_is_large_enough():
    assert len(set(PAYLOADS)) >= 200, len(set(PAYLOADS))


def test_no_payload_runs(pages, site, seeded):
    page = pages.open(site, email=ADMIN_EMAIL)
    fired = _watch(page)
    room, thread = seeded["room"], seeded["thread"]
    markers = [m.split(" ", 1)[0] for m in MARKED]

    text = _visit(page, "/rooms", fired, [SHORT[0].split(" ", 1)[0]] + [r.split(" ", 1)[0] for r in ROOMS])
    _visit(page, f"/rooms/{room}", fired, [t.split(" ", 1)[0] for t in TITLES[-25:]])  # newest first
    _visit(page, f"/rooms/{room}?page=2", fired, [t.split(" ", 1)[0] for t in TITLES[:20]])
    for rid in seeded["rooms"][:2]:
        _visit(page, f"/rooms/{rid}", fired)
    for view in ("tree", "flat"):
        text = _visit(page, f"/threads/{thread}?view={view}", fired, markers[:40])
    # Template-injection strings are shown literally, never evaluated.
    for t in TEMPLATES[:8]:
        assert t in text or t.replace("  ", " ") in text, f"{t!r} is not shown literally"
    _visit(page, f"/rooms/{room}/members", fired, [n.split(" ", 1)[0] for n in NAMES])
    _visit(page, "/notifications", fired, [n.split(" ", 1)[0] for n in NAMES])  # replies by payload-named people
    _visit(page, "/admin/people", fired, [n.split(" ", 1)[0] for n in NAMES])
    _visit(page, "/account", fired)
    _visit(page, "/search?q=xsscorpus", fired, [SHORT[-1].split(" ", 1)[0]])
    _visit(page, "/search?q=xsstitle", fired, [TITLES[-1].split(" ", 1)[0]])
    for p in (PAYLOADS[0], RAW_HTML[0], RAW_HTML[2], ATTR_BREAKERS[0], ATTR_BREAKERS[3], TEMPLATES[0]):
        _visit(page, "/search?q=" + quote(p), fired)


def test_every_post_payload_is_shown_inert(pages, site, seeded):
    """Every post-body payload's marker is on the thread page (pages beyond the first included)."""
    page = pages.open(site, email=ADMIN_EMAIL)
    fired = _watch(page)
    text = _visit(page, f"/threads/{seeded['thread']}?view=flat", fired)
    markers = [m.split(" ", 1)[0] for m in MARKED]
    shown = [m for m in markers if m in text]
    assert len(shown) == len(markers), f"markers missing from the thread page: {sorted(set(markers) - set(shown))[:10]}"


def test_uploads_are_downloads_never_rendered(pages, site, seeded):
    page = pages.open(site, email=ADMIN_EMAIL)
    fired = _watch(page)
    atts = seeded["attachments"]
    assert len(atts) == len(FILES) + 4
    for att in atts:
        url = f"/attachments/{att['id']}/{quote(att['filename'])}"
        resp = page.request.get(url)
        assert resp.status == 200, (url, resp.status)
        disp = resp.headers.get("content-disposition", "")
        assert disp.startswith("attachment"), (att["filename"], disp)
        assert resp.headers.get("x-content-type-options") == "nosniff", att["filename"]
        ctype = resp.headers.get("content-type", "")
        assert "html" not in ctype and "svg" not in ctype and "xml" not in ctype or disp.startswith("attachment"), ctype
    for att in atts:
        if att["filename"].endswith((".svg", ".html", ".htm", ".png")):
            url = f"/attachments/{att['id']}/{quote(att['filename'])}"
            with page.expect_download() as dl:
                try:
                    page.goto(url)
                except Exception as err:  # noqa: BLE001 -- Playwright reports "Download is starting"
                    assert "Download is starting" in str(err), err
            assert dl.value.suggested_filename == att["filename"]
            assert not fired, fired
    _visit(page, f"/threads/{seeded['thread']}?view=flat", fired, [f.split(" ", 1)[0] for f in FILES])
