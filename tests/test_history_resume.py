"""A killed history import resumes from its checkpoint with nothing lost and nothing written
twice (issue 14): killed in the middle of a batch, whose rows are then rolled back with its
transaction as a killed process's are, after two batches were committed. Over the command line
(`lfd history import` run again) and over HTTP (the background runner takes the job over)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from app.cli import main
from app.config import Settings, get_settings
from app.db import Database
from app.history import runner
from app.history.commands import import_command
from app.history.router import _running as started
from app.kit.time import now
from app.models import Death, HistoryImport, Referral, Review, Screening
from tests.conftest import MakeApi, MakeApp
from tests.history_records import bundle, history_record, sjr_referral, utc


class Killed(BaseException):
    """The process dying: nothing after it runs, and no handler of Exception sees it."""


def records(system: str, count: int = 7) -> list[dict[str, Any]]:
    first = utc(2015, 3, 2, 10, 0)
    made = []
    for index in range(count):
        died = first + timedelta(minutes=index)
        made.append(
            history_record(
                died,
                system=system,
                screening={"death_expected": False},
                referrals=[sjr_referral(died + timedelta(days=2), died + timedelta(days=30))],
            )
        )
    return made


async def rows(database: Database, system: str) -> dict[str, int]:
    async with database.transaction() as session:

        async def count(model: Any) -> int:
            query = select(func.count()).select_from(model)
            if model is not Death:
                query = query.join(Death, Death.id == model.death_id)
            return int(await session.scalar(query.where(Death.source_system == system)) or 0)

        return {
            "deaths": await count(Death),
            "screenings": await count(Screening),
            "referrals": await count(Referral),
            "reviews": await count(Review),
        }


def kill_on_batch(monkeypatch: pytest.MonkeyPatch, number: int) -> Any:
    """Die while recording batch ``number``: its records are written in the open transaction,
    the checkpoint not yet moved."""
    real = runner._record_batch
    calls = 0

    async def dying(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == number:
            raise Killed
        await real(*args)

    monkeypatch.setattr(runner, "_record_batch", dying)
    return real


async def lease_runs_out(database: Database, import_id: uuid.UUID) -> None:
    """A killed runner's lease lasts two minutes; here it is made to have run out."""
    async with database.transaction() as session:
        await session.execute(
            update(HistoryImport)
            .where(HistoryImport.id == import_id)
            .values(lease_expires_at=now() - timedelta(seconds=1))
        )


async def the_job(database: Database, system: str) -> HistoryImport:
    async with database.transaction() as session:
        job = await session.scalar(
            select(HistoryImport)
            .where(HistoryImport.spool_path.contains(system))
            .order_by(HistoryImport.created_at.desc())
            .limit(1)
        )
        assert job is not None
        return job


async def test_the_command_line_resumes_a_killed_import(
    base_settings: Settings,
    database: Database,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    system = f"resume-{uuid.uuid4().hex[:8]}"
    file = tmp_path / f"{system}.jsonl"
    file.write_bytes(bundle(records(system)))
    real = kill_on_batch(monkeypatch, 3)
    with pytest.raises(Killed):
        await import_command(base_settings, file, False, 2)
    assert await rows(database, system) == dict.fromkeys(
        ("deaths", "screenings", "referrals", "reviews"), 4
    )
    job = await the_job(database, system)
    assert (job.status, job.records_done, job.created) == ("running", 4, 4)

    monkeypatch.setattr(runner, "_record_batch", real)
    await lease_runs_out(database, job.id)
    monkeypatch.setenv("LFD_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        code = await asyncio.to_thread(main, ["history", "import", str(file), "--batch-size", "2"])
    finally:
        get_settings.cache_clear()
    assert code == 0
    out = capsys.readouterr()
    assert f"Resuming import {job.id} after line 4." in out.err
    assert "100%" in out.err and "ETA" in out.err
    assert "7 created, 0 updated, 0 unchanged, 0 refused" in out.out
    assert await rows(database, system) == dict.fromkeys(
        ("deaths", "screenings", "referrals", "reviews"), 7
    )
    job = await the_job(database, system)
    assert job.status == "completed"
    assert [b["lines"] for b in job.batches] == [[1, 2], [3, 4], [5, 6], [7, 7]]


async def test_the_background_runner_resumes_an_import_posted_over_http(
    app_factory: MakeApp, make_api: MakeApi, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = f"resume-{uuid.uuid4().hex[:8]}"
    _, http = await app_factory(history_batch_size=2)
    api = await make_api(client=http)
    real = kill_on_batch(monkeypatch, 2)
    response = await api.post(
        "/v1/history/imports",
        content=bundle(records(system, 5)),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 202
    job_id = uuid.UUID(response.json()["id"])
    for _ in range(2000):
        job = (await api.get(f"/v1/history/imports/{job_id}")).json()
        if job["records_done"] >= 2 and all(task.done() for task in started):
            break
        await asyncio.sleep(0.01)
    assert (job["status"], job["created"]) == ("running", 2)
    assert (await rows(database, system))["deaths"] == 2

    monkeypatch.setattr(runner, "_record_batch", real)
    await lease_runs_out(database, job_id)
    assert await runner.resume_pending_imports(database) >= 1
    job = (await api.get(f"/v1/history/imports/{job_id}")).json()
    assert (job["status"], job["created"], job["refused"]) == ("completed", 5, 0)
    assert await rows(database, system) == dict.fromkeys(
        ("deaths", "screenings", "referrals", "reviews"), 5
    )


async def test_a_command_line_import_killed_with_sigkill_resumes(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    """A real kill: the command runs in its own process and gets SIGKILL mid-import."""
    system = f"killed-{uuid.uuid4().hex[:8]}"
    file = tmp_path / f"{system}.jsonl"
    file.write_bytes(bundle(records(system, 600)))
    command = [sys.executable, "-m", "app.cli", "history", "import", str(file)]
    environment = {**os.environ, "LFD_DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        *command,
        "--batch-size",
        "3",
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(6000):
            async with database.transaction() as session:
                done = await session.scalar(
                    select(HistoryImport.records_done).where(
                        HistoryImport.spool_path.contains(system)
                    )
                )
            if done:
                break
            await asyncio.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        await process.wait()
    job = await the_job(database, system)
    assert job.status == "running" and 0 < job.records_done < 600, job.records_done
    committed = job.records_done
    assert (await rows(database, system))["deaths"] == job.created

    await lease_runs_out(database, job.id)
    resumed = await asyncio.create_subprocess_exec(
        *command, "--batch-size", "200", env=environment, stderr=asyncio.subprocess.PIPE
    )
    _, err = await resumed.communicate()
    assert resumed.returncode == 0, err.decode()
    assert f"after line {committed:,}." in err.decode()
    assert await rows(database, system) == dict.fromkeys(
        ("deaths", "screenings", "referrals", "reviews"), 600
    )
    job = await the_job(database, system)
    assert (job.status, job.created, job.refused) == ("completed", 600, 0)
