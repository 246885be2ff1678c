"""House rules of the test suite itself: no test module imports another (what tests share lives
in tests/factories.py, tests/kit/ or, for fixtures, tests/conftest.py), so that a test module
can be read, moved or deleted on its own."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def is_test_module(module: str) -> bool:
    """``tests.test_x`` or ``tests.security.test_y``: a module pytest collects tests from (not
    ``tests.factories.test_nhs_number``, a name in a module that is not a test module)."""
    *packages, last = module.split(".")
    if not packages or packages[0] != "tests" or not last.startswith("test_"):
        return False
    folder = TESTS.parent
    for package in packages:
        folder = folder / package
        if not folder.is_dir():
            return False
    return True


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module the source imports, absolute or relative to tests/, at any depth (an
    import inside a function counts): (line, dotted name), ``from tests import test_x``
    naming ``tests.test_x``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: tests/ is the only package these modules live in
                base = "tests" + (f".{base}" if base else "")
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def suite_modules() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def test_the_rule_sees_every_kind_of_import() -> None:
    source = """
import tests.test_a
from tests.test_b import helper
from tests import test_c
from .test_d import thing
from tests.security.test_e import other
from tests.factories import idem, test_nhs_number
from tests.kit.reviews import refer

def later():
    from tests.test_f import inner
"""
    named = {name for _, name in imported_modules(ast.parse(source)) if is_test_module(name)}
    assert {
        "tests.test_a",
        "tests.test_b",
        "tests.test_c",
        "tests.test_d",
        "tests.security.test_e",
        "tests.test_f",
    } <= named
    assert not {n for n in named if n.startswith(("tests.factories", "tests.kit"))}
    assert not is_test_module("app.test_thing") and not is_test_module("test_thing")


def test_no_test_module_imports_another() -> None:
    modules = suite_modules()
    assert len(modules) > 40  # the walk really read the suite
    offences = [
        f"{path.relative_to(TESTS.parent)}:{line} imports {name}"
        for path in modules
        for line, name in imported_modules(ast.parse(path.read_text(), str(path)))
        if is_test_module(name)
    ]
    assert offences == [], (
        "a test module imports another; move what they share to tests/factories.py or "
        "tests/kit/ (fixtures to tests/conftest.py)"
    )


def test_every_package_of_the_app_is_in_the_layers_contract() -> None:
    """A package or module of app/ left out of import-linter's layers escapes the rule that
    imports go one way (docs/architecture.md): every one must be on a line of the contract."""
    import tomllib

    config = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    listed = {name.strip() for line in layers for name in line.split("|")}
    app = TESTS.parent / "app"
    children = {
        path.stem if path.is_file() else path.name
        for path in app.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert children - listed == set(), "add these to [tool.importlinter] in pyproject.toml"
