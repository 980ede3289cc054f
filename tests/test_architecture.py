"""The arrows between apps point one way (DESIGN.md), and the pure modules stay pure.

Imports are read with ``ast`` from the source files, not by importing them: every
``import``/``from ... import`` anywhere in a module counts (also inside functions,
also relative ones), and so does ``importlib.import_module("<literal>")``.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Which project packages each app may import (besides itself), from DESIGN.md:
# lifecycle may import monitoring, governance and registry; monitoring and
# governance may import registry; every app may import common; common imports
# none of them; demo sits above them all and nobody imports it.
DOMAIN_APPS = ("common", "registry", "governance", "monitoring", "lifecycle")
MAY_IMPORT = {
    "common": set(),
    "registry": {"common"},
    "governance": {"common", "registry"},
    "monitoring": {"common", "registry"},
    "lifecycle": {"common", "registry", "governance", "monitoring"},
}
PROJECT_PACKAGES = {*DOMAIN_APPS, "demo", "config", "client", "tests", "bench"}
# ``config`` (settings, the Celery app) is not an app: any app may import it.
NOT_APPS = {"config"}

# Pure computation: no Django, directly or through another project module. These
# are pure by design (DESIGN.md); so is every module whose docstring says it is
# ("pure: no Django"), found below.
PURE_MODULES = ["monitoring/drift.py", "governance/fairness.py"]
PURE_IF_PRESENT = ["lifecycle/transitions.py", "common/metrics.py"]
SAYS_PURE = re.compile(r"\bpure\b|\bno django\b", re.IGNORECASE)
FRAMEWORKS = ("django", "rest_framework", "celery", "guardian", "knox", "axes", "csp")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def imports_of(path: Path) -> frozenset[str]:
    """Dotted names that the module at ``path`` imports, anywhere in its body."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from ..y import z
                base = package[: len(package) - node.level + 1]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            found.add(stem)
            # ``from registry import services`` imports registry.services
            found.update(f"{stem}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and _is_import_module(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
    return frozenset(found)


def _is_import_module(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in ("import_module", "__import__")


def app_files(app: str) -> list[Path]:
    return sorted((ROOT / app).rglob("*.py"))


def top(name: str) -> str:
    return name.split(".", 1)[0]


def project_file(name: str) -> Path | None:
    """The source file of a project module, or None (third party, or a name
    inside a module such as ``registry.services.alias_set``)."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_every_domain_app_is_scanned():
    for app in (*DOMAIN_APPS, "demo"):
        assert len(app_files(app)) > 3, app


@pytest.mark.parametrize("app", DOMAIN_APPS)
def test_a_domain_app_imports_only_the_apps_below_it_and_never_demo(app):
    wrong = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in app_files(app)
        for name in imports_of(path)
        if top(name) in PROJECT_PACKAGES - NOT_APPS - {app} - MAY_IMPORT[app]
    )
    allowed = ", ".join(sorted(MAY_IMPORT[app])) or "no app"
    assert wrong == [], f"{app} may import {allowed} only:\n" + "\n".join(wrong)


def test_common_imports_no_domain_app():
    # Said twice on purpose: the table above could be edited, this rule cannot.
    wrong = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in app_files("common")
        for name in imports_of(path)
        if top(name) in {*DOMAIN_APPS, "demo"} - {"common"}
    )
    assert wrong == [], "\n".join(wrong)


def pure_modules() -> list[str]:
    declared = {
        str(path.relative_to(ROOT))
        for app in (*DOMAIN_APPS, "demo")
        for path in app_files(app)
        if SAYS_PURE.search(ast.get_docstring(ast.parse(path.read_text())) or "")
    }
    present = {p for p in PURE_IF_PRESENT if (ROOT / p).is_file()}
    return sorted({*PURE_MODULES, *present, *declared})


def test_the_pure_modules_include_those_that_say_so():
    found = pure_modules()
    assert {"monitoring/drift.py", "governance/fairness.py", "demo/samples.py"} <= set(found)


@pytest.mark.parametrize("relative", pure_modules())
def test_a_pure_module_imports_no_django_even_through_another_module(relative):
    path = ROOT / relative
    assert path.is_file(), f"{relative} is listed as pure but does not exist"
    # Follow project imports (and the packages they run on the way) transitively.
    seen: set[Path] = set()
    todo = [(path, relative)]
    wrong = []
    while todo:
        current, trail = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in imports_of(current):
            if top(name) in FRAMEWORKS or top(name).startswith(("django_", "drf_")):
                wrong.append(f"{trail} imports {name}")
            elif top(name) in PROJECT_PACKAGES:
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # a.b.c runs a/__init__, a/b/__init__, ...
                    found = project_file(".".join(parts[:i]))
                    if found is not None:
                        todo.append((found, f"{trail} -> {found.relative_to(ROOT)}"))
    assert wrong == [], (
        f"{relative} is pure (DESIGN.md, or its docstring says so) but reaches Django:\n"
        + "\n".join(sorted(wrong)[:20])
    )


def test_the_import_reader_sees_lazy_relative_and_dynamic_imports(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    package = tmp_path / "registry"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "thing.py"
    module.write_text(
        "import importlib\n"
        "from . import services\n"
        "from ..demo import samples\n"
        "def later():\n"
        "    from django.db import models\n"
        "    importlib.import_module('governance.reviews')\n"
    )
    names = imports_of(module)
    assert {"registry.services", "demo.samples", "django.db", "governance.reviews"} <= names
