"""Packaging and configuration (issue 18): the command line refuses to make a silent new
SQLite file in the wrong directory; problem-type URIs are configurable; the lockfiles agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.cli import main
from app.config import Settings
from app.errors import PROBLEM_BASE, set_problem_base

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["clients", "list"],
        ["audit", "verify"],
        ["history", "export", "-o", "out.jsonl"],
        ["worker"],
        ["overdue"],
    ],
)
def test_cli_refuses_a_missing_sqlite_database(tmp_path, monkeypatch, command):
    """Every command that needs the service's database stops with the absolute path it looked
    at, and makes no empty file there (review of issue 18: audit and history made one)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LFD_DATABASE_URL", "sqlite+aiosqlite:///./lfd.db")
    from app.config import get_settings

    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as stopped:
            main(command)
    finally:
        get_settings.cache_clear()
    assert str(tmp_path / "lfd.db") in str(stopped.value)
    assert not (tmp_path / "lfd.db").exists()


def test_cli_says_where_it_makes_a_new_database(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LFD_DATABASE_URL", "sqlite+aiosqlite:///./lfd.db")
    from app.config import get_settings

    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 0
    finally:
        get_settings.cache_clear()
    assert f"no database at {tmp_path / 'lfd.db'}; making a new one" in capsys.readouterr().err
    assert (tmp_path / "lfd.db").is_file()


async def test_problem_type_base_is_configurable(app_factory):
    try:
        _, http = await app_factory(problem_base_uri="https://trust.example.nhs.uk/lfd/problems")
        answer = await http.get("/v1/deaths")
        assert answer.json()["type"] == "https://trust.example.nhs.uk/lfd/problems/unauthorized"
    finally:
        set_problem_base(Settings.model_fields["problem_base_uri"].default)
    assert Settings.model_fields["problem_base_uri"].default == PROBLEM_BASE


def locked(name: str) -> dict[str, str]:
    text = (ROOT / "requirements" / f"{name}.txt").read_text()
    return dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\$", text, flags=re.M))


def test_lockfiles_agree_and_cover_the_dependencies():
    serve, dev, fuzz = locked("serve"), locked("dev"), locked("fuzz")
    assert serve and set(serve) <= set(dev) <= set(fuzz)
    for package, version in dev.items():
        assert fuzz[package] == version, package
        assert serve.get(package, version) == version, package
    for name in ("serve", "dev", "fuzz"):
        assert "--hash=sha256:" in (ROOT / "requirements" / f"{name}.txt").read_text()
    # The test tools are not installed to serve.
    assert "pytest" not in serve and "pytest" in dev
    assert {"pyjwt", "prometheus-client", "fastapi-offline"} <= set(serve)
