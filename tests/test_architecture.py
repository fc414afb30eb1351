"""The package's shape, read from its source: no import cycle, and the layers apart.

The import graph is built by parsing every module under govern/ (nothing is imported to
build it): an edge for every `import govern...` and `from govern... import ...` (relative
imports resolved), **including the imports inside functions** — a function-level import
is how a cycle usually hides, and it still couples the two modules both ways. Only imports
under `if TYPE_CHECKING:` are left out, since they never run. `from govern.x import y`
is an edge to the module govern.x.y when y is a module, else to govern.x.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "govern"


def _modules(package: Path) -> dict[str, tuple[Path, bool]]:
    mods = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        mods[".".join(parts)] = (path, is_package)
    return mods


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST):
    """Every Import/ImportFrom node, at any depth, except under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the govern modules it imports (module-level and function-level)."""
    mods = _modules(package)
    root = package.name

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in mods.items():
        deps: set[str | None] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(known(a.name) for a in node.names
                            if a.name == root or a.name.startswith(root + "."))
                continue
            base = node.module or ""
            if node.level:
                here = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    here = here.rpartition(".")[0]
                base = f"{here}.{base}" if base else here
            if base != root and not base.startswith(root + "."):
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                deps.add(full if full in mods else known(base))
        deps.discard(None)
        deps.discard(name)
        graph[name] = deps  # type: ignore[assignment]
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "govern"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from govern.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    (pkg / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import govern.a\n")
    graph = import_graph(pkg)
    assert graph["govern.a"] == {"govern.sub.b"}
    assert graph["govern.sub.b"] == {"govern.a"}
    assert graph["govern.sub.c"] == set()
    assert cycles(graph) == [["govern.a", "govern.sub.b"]]


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50  # the parse found the package
    assert cycles(graph) == []


# What only the HTTP side may know. A domain, policy or SQL module may not import these,
# nor any govern module that (transitively) does.
HTTP = ("flask", "flask_smorest", "werkzeug", "webargs", "marshmallow")
HTTP_MODULES = ("govern.errors", "govern.api", "govern.app", "govern.hardening",
                "govern.console")
FRAMEWORK_FREE = ("govern.domain", "govern.policy", "govern.sql", "govern.exceptions",
                  "govern.auth")


def _external_imports(path: Path) -> set[str]:
    names = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def http_leaks(package: Path = PACKAGE) -> dict[str, list[str]]:
    """framework-free module -> the HTTP things it reaches (directly or via govern modules)."""
    mods = _modules(package)
    graph = import_graph(package)
    direct_http = {m for m, (path, _) in mods.items()
                   if _under(m, HTTP_MODULES) or _external_imports(path) & set(HTTP)}
    leaks = {}
    for start in sorted(m for m in graph if _under(m, FRAMEWORK_FREE)):
        seen, todo, path_to = {start}, [start], {start: [start]}
        while todo:
            node = todo.pop()
            for dep in sorted(graph[node]):
                if dep not in seen:
                    seen.add(dep)
                    path_to[dep] = path_to[node] + [dep]
                    todo.append(dep)
        bad = sorted(seen & direct_http)
        if bad:
            leaks[start] = path_to[bad[0]]
    return leaks


def test_domain_policy_and_sql_know_nothing_of_http():
    assert http_leaks() == {}


def test_the_migrations_ship_in_the_package():
    """govern.migrate finds the revisions inside the package (an installed, non-editable
    govern has no source tree beside it), and every file there is package data."""
    import fnmatch
    import tomllib

    from govern import migrate

    assert migrate.SCRIPT_LOCATION == "govern:migrations"
    assert migrate.MIGRATIONS_DIR.joinpath("versions").is_dir()
    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["govern"]
    shipped = [p for p in (PACKAGE / "migrations").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts]
    assert shipped
    for path in shipped:
        rel = path.relative_to(PACKAGE).as_posix()
        assert any(fnmatch.fnmatch(rel, pat) for pat in patterns), rel


# Modules outside govern/sql that still write a statement of their own, and why.
SQL_ELSEWHERE = {
    "govern.db": "the tenant-scope listener's set_config, part of the session machinery",
}


def test_sql_lives_in_govern_sql():
    """No module outside govern/sql (and the migrations) builds a statement from text: it
    names one from a govern.sql module, where the statements of a concern sit together
    with their reasons."""
    offenders = []
    for name, (path, _) in sorted(_modules(PACKAGE).items()):
        if _under(name, ("govern.sql", "govern.migrations")) or name in SQL_ELSEWHERE:
            continue
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == "sqlalchemy" \
                    and any(a.name == "text" for a in node.names):
                offenders.append(name)
    assert offenders == []
