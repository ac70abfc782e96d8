"""The front end's module layout (issue 11, point 6), read from the files themselves: templates
load page scripts as plain ES modules from our own static folder (no build step, no CDN); page
scripts share small modules and never import one another; each shared helper is written once.
The browser tests (tests/browser/) prove the pages still work."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "collab"
JS = ROOT / "static" / "js"
IMPORT = re.compile(r'^\s*import\s+(?:[^"\']*?\s+from\s+)?["\']([^"\']+)["\']', re.M)
SCRIPT_TAG = re.compile(r"<script\b[^>]*>", re.I)
SHARED = {"el": "dom.js", "byId": "dom.js", "csrfToken": "csrf.js", "csrfInput": "csrf.js", "dateTime": "dates.js",
          "clockTime": "dates.js", "newClientId": "drafts.js", "socket": "socket.js", "announce": "live_regions.js"}


def _scripts_in_templates() -> set[str]:
    pages = set()
    for tpl in (ROOT / "templates").rglob("*.html"):
        for tag in SCRIPT_TAG.findall(tpl.read_text()):
            assert 'type="module"' in tag, (tpl.name, tag)
            m = re.search(r"filename='js/([\w.]+)'", tag)
            assert m, f"{tpl.name}: a script not served from static/js: {tag}"
            pages.add(m.group(1))
    return pages


def test_page_scripts_are_modules_from_our_static_folder():
    assert _scripts_in_templates() == {"app.js", "live.js", "meeting.js", "meeting_room.js", "ideas.js", "polls.js", "qa.js", "watch.js",
                                       "recording.js"}


def test_imports_resolve_inside_static_and_never_name_a_page_script():
    pages = _scripts_in_templates()
    static = (ROOT / "static").resolve()
    for module in JS.glob("*.js"):
        for spec in IMPORT.findall(module.read_text()):
            assert spec.startswith("./") or spec.startswith("../"), (module.name, spec)   # no CDN, no bare names
            target = (module.parent / spec).resolve()
            assert target.is_file() and static in target.parents, (module.name, spec)
            assert not (target.parent == JS.resolve() and target.name in pages), \
                f"{module.name} imports the page script {target.name}: share a module instead"


def test_each_shared_helper_is_defined_once():
    # a function declaration anywhere, a module-level binding, or a binding to an arrow function anywhere
    define = re.compile(r"^(?:\s*(?:export\s+)?(?:async\s+)?function\s+(\w+)"
                        r"|(?:export\s+)?(?:const|let|var)\s+(\w+)\s*="
                        r"|\s*(?:const|let|var)\s+(\w+)\s*=\s*(?:async\s*)?\([^)]*\)\s*=>)", re.M)
    where: dict[str, list[str]] = {}
    for module in JS.glob("*.js"):
        for names in define.findall(module.read_text()):
            where.setdefault(next(n for n in names if n), []).append(module.name)
    for name, home in SHARED.items():
        assert where.get(name) == [home], (name, where.get(name))
    # the page's one Socket.IO connection: io() is called in socket.js only
    callers = [m.name for m in JS.glob("*.js") if re.search(r"\bio\(", m.read_text())]
    assert callers == ["socket.js"], callers
