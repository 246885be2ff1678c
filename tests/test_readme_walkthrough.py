"""The README's walk-through, run as written (issue 18): its shell commands, taken from
README.md itself, against the service under uvicorn on a fresh database. Only the host
(`http://127.0.0.1:8000`), the placeholders a reader fills in from earlier answers
(`<death-id>`, `<screening-etag>`, ...) and the export's output file are substituted, so a
command that stops working, a scope an example client lacks, or a step that would answer 4xx
fails this test."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from app.config import Settings
from app.main import create_app
from app.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PLACEHOLDER = re.compile(r"<[a-z][a-z0-9 \"-]*[a-z\"]>")


def walkthrough_blocks() -> list[str]:
    text = README.read_text()
    start = text.index("## A walk-through with curl")
    end = text.index("## Integrations")
    return re.findall(r"```sh\n(.*?)```", text[start:end], flags=re.S)


def commands(block: str) -> list[str]:
    """The block's commands: comments and blank lines dropped, continuation lines and
    multi-line single-quoted bodies joined."""
    found, current = [], ""
    for line in block.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line + "\n"
        if line.endswith("\\") or current.count("'") % 2:
            continue
        found.append(current.strip())
        current = ""
    assert not current, "unterminated command in the README"
    return found


@pytest.fixture
def server(scratch_url: str) -> Iterator[tuple[str, str]]:
    upgrade(scratch_url)
    settings = Settings(database_url=scratch_url, run_worker_in_serve=False, log_json=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # only stops a hung start; not a timed assertion
    while thread.is_alive() and not running.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", scratch_url
    finally:
        running.should_exit = True
        thread.join(timeout=30)
        sock.close()


class Walk:
    def __init__(self, base: str, database_url: str, scratch: Path) -> None:
        self.base = base
        self.scratch = scratch
        self.env = {**os.environ, "LFD_DATABASE_URL": database_url}
        # The README runs the CLI from the repository's .venv, as scripts/serve makes it.
        self.lfd = ".venv/bin/lfd"
        if not (ROOT / self.lfd).exists():
            self.lfd = str(Path(sys.executable).parent / "lfd")
        self.variables: dict[str, str] = {}
        self.values: dict[str, str] = {}
        self.answers: list[tuple[str, Any]] = []

    def run(self, command: str) -> None:
        command = command.replace("http://127.0.0.1:8000", self.base)
        command = command.replace(".venv/bin/lfd", self.lfd)
        command = command.replace("-o plan.xlsx", f"-o {self.scratch / 'plan.xlsx'}")
        for placeholder, value in self.values.items():
            command = command.replace(placeholder, value)
        unfilled = PLACEHOLDER.findall(command.split("python3 -c")[0])
        assert not unfilled, f"nothing earlier in the walk-through gives {unfilled}: {command}"
        assignment = re.match(r"^([A-Z0-9_]+)=\$\(", command)
        script = "".join(f"{k}={shlex.quote(v)}\n" for k, v in self.variables.items())
        script += command
        if assignment:
            script += f'\nprintf "\\n%s" "${assignment.group(1)}"'
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + script],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (command, done.stderr)
        if assignment:
            self.variables[assignment.group(1)] = done.stdout.splitlines()[-1]
            return
        self.read(command, done.stdout)

    def read(self, command: str, output: str) -> None:
        status, headers, body = 200, {}, output
        if " -si " in command or " -s -i " in command:
            head, _, body = output.partition("\n\n")
            status = int(head.split()[1])
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in head.splitlines()[1:])
            }
        if "-o " in command:
            assert (self.scratch / "plan.xlsx").stat().st_size > 0
            return
        answer = json.loads(body)
        assert 200 <= status < 300, (command, status, body)
        if isinstance(answer, dict) and isinstance(answer.get("status"), int):
            assert answer["status"] < 400, (command, answer)
        self.answers.append((command, answer))
        if "/v1/screenings" in command and "-X POST" in command:
            self.values["<death-id>"] = answer["death_id"]
            self.values["<screening-id>"] = answer["id"]
            sent = json.loads(command.split("-d '", 1)[1].rsplit("'", 1)[0])
            amended = copy.deepcopy(sent["screening"])
            amended["staff_concerns"] = "Handover notes were incomplete."
            self.values['<the "screening" part of the POST, amended>'] = json.dumps(amended)
        if "etag" in headers and "/v1/screenings/" in command:
            self.values["<screening-etag>"] = headers["etag"]
        if "/v1/referrals/claim" in command:
            (claimed,) = answer["items"]
            self.values["<referral-id>"] = claimed["id"]
            self.values["<lease-id>"] = claimed["lease_id"]
            self.values["<death-id>"] = claimed["death_id"]
        if "/v1/action-plans/import" in command and answer.get("plan_id"):
            self.values["<plan-id>"] = answer["plan_id"]


def answer_to(walk: Walk, fragment: str) -> Any:
    found = [answer for command, answer in walk.answers if fragment in command]
    assert found, fragment
    return found[-1]


def walk_the_readme(base: str, database_url: str, scratch: Path) -> Walk:
    walk = Walk(base, database_url, scratch)
    for block in walkthrough_blocks():
        for command in commands(block):
            walk.run(command)
    return walk


async def test_the_readme_walkthrough_runs_as_written(server, tmp_path) -> None:
    base, database_url = server
    walk = await asyncio.to_thread(walk_the_readme, base, database_url, tmp_path)
    # The amended screening was accepted with the screening's ETag.
    amended = answer_to(walk, "-X PUT")
    assert amended["staff_concerns"] == "Handover notes were incomplete."
    # The review tool read the case it claimed (it holds deaths:read).
    death = answer_to(walk, "/v1/deaths/")
    assert death["id"] == walk.values["<death-id>"]
    # The poor-care SJR raised a stage-2 SJR, named in the answer.
    review = answer_to(walk, "/review")
    assert [(r["route"], r["stage"]) for r in review["follow_on_referrals"]] == [("sjr", 2)]
    # The example plan's title is a title, not a test fixture's template.
    plan = answer_to(walk, 'import" ')
    assert plan["title"] == "Learning from Deaths improvement plan 2015/16"
    assert not any("{RUN}" in json.dumps(answer) for _, answer in walk.answers)
