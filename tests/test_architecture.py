"""The layering of the packages, measured with the imports (issue 11): every import
counts, at module level or inside a function, since an import hidden in a function
still ties the two modules together.

- `auth/` imports nothing from `rooms/` or `search/` (accounts know nothing of rooms;
  rooms register what they need from auth, e.g. auth.services.on_invitation_accepted);
- `rooms/` imports nothing from `search/` (the search page links to rooms, not back);
- no import circle among the modules of the app. The factory, `collab/__init__.py`
  (`create_app`), imports every package to wire the app; it is the root of the graph,
  not a node of it, and no module imports it back for anything but its version.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("auth", "collab", "rooms", "search", "media")
FACTORY = "collab"


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """module -> the app modules it imports (anywhere in the file)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = mod.split(".")[: None if is_pkg else -1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                # `from pkg import module` imports that module; `from pkg import name` the package itself.
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            for name in names:
                target = _resolve(name, mods)
                if target and target != mod:
                    targets.add(target)
        graph[mod] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _imports_of(graph, package: str) -> dict[str, set[str]]:
    return {m: ts for m, ts in graph.items() if m == package or m.startswith(package + ".")}


def test_auth_imports_nothing_from_rooms_or_search():
    graph = import_graph()
    wrong = {m: sorted(t for t in ts if t.split(".")[0] in ("rooms", "search"))
             for m, ts in _imports_of(graph, "auth").items()}
    assert not {m: ts for m, ts in wrong.items() if ts}


def test_rooms_imports_nothing_from_search():
    graph = import_graph()
    wrong = {m: sorted(t for t in ts if t.split(".")[0] == "search") for m, ts in _imports_of(graph, "rooms").items()}
    assert not {m: ts for m, ts in wrong.items() if ts}


def test_no_import_circle_among_accounts_rooms_and_shared_code():
    """auth/, the top-level modules of rooms/ and collab/ (the factory aside)."""
    graph = import_graph()

    def ours(m: str) -> bool:
        top = m.split(".")
        return m != FACTORY and (top[0] in ("auth", "collab") or (top[0] == "rooms" and len(top) == 2))

    sub = {m: {t for t in ts if ours(t)} for m, ts in graph.items() if ours(m)}
    assert cycles(sub) == []


def test_the_graph_sees_imports_inside_functions():
    """The measure itself: a function-local import is an edge, and a circle through one is found."""
    tree = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(tree) == [["a", "b", "c"]]
    graph = import_graph()
    # collab/cli.py imports rooms.retention inside a CLI command (to start fast): still an edge.
    assert "rooms.retention" in graph["collab.cli"]
