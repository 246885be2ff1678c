"""A real streaming replica for the tests and benchmarks of app.replica (docs/replica.md).

From the PostgreSQL installation the run's server uses (the same major version's binaries),
in a temporary directory: a small primary cluster of its own (``initdb``), its hot standby
(``pg_basebackup -R``, streaming), each started with ``pg_ctl`` on a free port, and both
stopped and removed at the end whatever happens. A cluster of its own rather than a base
backup of the run's server: that one is shared (a copy would take every database on it, and
some are many gigabytes) and its pg_hba.conf need not allow replication connections.

PostgreSQL will not run as root: as root, every command runs as the ``postgres`` OS user (the
one the packaged clusters run as), which then owns the directory.

Nothing here skips: if the pair cannot be made, the caller gets an error that says why (the
command, its output, the server's log), and a PostgreSQL test run fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

OS_USER = "postgres"
SUPERUSER = "postgres"
# Fast and small: a test cluster, thrown away after the run.
SETTINGS = """
listen_addresses = '127.0.0.1'
unix_socket_directories = '{sockets}'
fsync = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 80
wal_level = replica
max_wal_senders = 4
hot_standby = on
hot_standby_feedback = on
logging_collector = off
"""
HBA = """
local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
"""


class ReplicaSetupError(RuntimeError):
    pass


@dataclass(frozen=True)
class StreamingPair:
    root: Path
    primary_port: int
    standby_port: int

    def url(self, port: int, database: str, user: str = SUPERUSER) -> str:
        return f"postgresql+asyncpg://{user}@127.0.0.1:{port}/{database}"

    def primary_url(self, database: str, user: str = SUPERUSER) -> str:
        return self.url(self.primary_port, database, user)

    def standby_url(self, database: str, user: str = SUPERUSER) -> str:
        return self.url(self.standby_port, database, user)

    async def standby_sql(self, statement: str) -> object:
        """One statement on the standby as its superuser (pausing replay, ending backends)."""
        connection = await asyncpg.connect(
            host="127.0.0.1", port=self.standby_port, user=SUPERUSER, database="postgres"
        )
        try:
            return await connection.fetchval(statement)
        finally:
            await connection.close()

    async def pause_replay(self) -> None:
        await self.standby_sql("SELECT pg_wal_replay_pause()")
        # Paused means the startup process has stopped applying, not only been asked to.
        stop = time.monotonic() + 30
        while await self.standby_sql("SELECT pg_get_wal_replay_pause_state()") != "paused":
            assert time.monotonic() < stop, "replay never paused"
            await asyncio.sleep(0.01)

    async def resume_replay(self) -> None:
        await self.standby_sql("SELECT pg_wal_replay_resume()")

    async def caught_up(self, deadline: float = 60.0) -> None:
        """Until the standby has replayed everything the primary has written now."""
        primary = await asyncpg.connect(
            host="127.0.0.1", port=self.primary_port, user=SUPERUSER, database="postgres"
        )
        try:
            target = await primary.fetchval("SELECT pg_current_wal_flush_lsn()::text")
        finally:
            await primary.close()
        stop = time.monotonic() + deadline
        while True:
            replayed = await self.standby_sql(
                f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
            )
            if replayed:
                return
            assert time.monotonic() < stop, "the standby never caught up"
            await asyncio.sleep(0.01)


def server_bindir(major: int) -> Path:
    """The binaries of PostgreSQL ``major`` (the run's server's): LFD_TEST_PG_BINDIR, else
    Debian's and Ubuntu's /usr/lib/postgresql/<major>/bin, else `pg_config --bindir` when
    that is the same major version."""
    named = os.environ.get("LFD_TEST_PG_BINDIR")
    candidates = [Path(named)] if named else []
    candidates.append(Path(f"/usr/lib/postgresql/{major}/bin"))
    config = shutil.which("pg_config")
    if config:
        found = subprocess.run(
            [config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found:
            candidates.append(Path(found))
    for candidate in candidates:
        if (candidate / "pg_basebackup").exists() and (candidate / "initdb").exists():
            version = subprocess.run(
                [str(candidate / "initdb"), "--version"], capture_output=True, text=True
            ).stdout
            if f" {major}." in version or version.strip().endswith(f" {major}"):
                return candidate
    raise ReplicaSetupError(
        f"no PostgreSQL {major} binaries (initdb, pg_basebackup) found in "
        f"{[str(c) for c in candidates]}; set LFD_TEST_PG_BINDIR"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Runner:
    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(OS_USER)
            except KeyError:
                raise ReplicaSetupError(
                    f"running as root and there is no {OS_USER!r} OS user to run PostgreSQL as"
                ) from None
            os.chown(root, account.pw_uid, account.pw_gid)
            runuser = shutil.which("runuser")
            if runuser is None:
                raise ReplicaSetupError("running as root and runuser is not installed")
            self.prefix = [runuser, "-u", OS_USER, "--"]

    def __call__(self, program: str, *args: str, timeout: float = 120) -> None:
        command = [*self.prefix, str(self.bindir / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            logs = "".join(
                f"\n--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}"
                for log in sorted(self.root.glob("*.log"))
            )
            raise ReplicaSetupError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
                f"{logs}"
            )

    def write(self, path: Path, text: str, append: bool = True) -> None:
        with path.open("a" if append else "w") as handle:
            handle.write(text)


@contextmanager
def streaming_pair(bindir: Path, settings: str = "") -> Iterator[StreamingPair]:
    """A primary and its streaming hot standby, stopped and removed on the way out.
    ``settings``: postgresql.conf lines for both, after the fast defaults (a benchmark turns
    fsync back on)."""
    root = Path(tempfile.mkdtemp(prefix="lfd-replica-"))
    run = _Runner(bindir, root)
    primary, standby = root / "primary", root / "standby"
    primary_port, standby_port = _free_port(), _free_port()
    started: list[Path] = []
    try:
        run("initdb", "-D", str(primary), "-U", SUPERUSER, "--auth=trust", "-N", "-E", "UTF8",
            "--locale=C.UTF-8")  # fmt: skip
        run.write(primary / "postgresql.conf", SETTINGS.format(sockets=root))
        run.write(primary / "postgresql.conf", f"{settings}\nport = {primary_port}\n")
        run.write(primary / "pg_hba.conf", HBA, append=False)
        run("pg_ctl", "-D", str(primary), "-l", str(root / "primary.log"), "-w", "-t", "60",
            "start")  # fmt: skip
        started.append(primary)
        run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port), "-U", SUPERUSER,
            "-D", str(standby), "-R", "-X", "stream", "-c", "fast")  # fmt: skip
        # The copied postgresql.conf names the primary's port: a later line wins.
        run.write(standby / "postgresql.conf", f"port = {standby_port}\n")
        run("pg_ctl", "-D", str(standby), "-l", str(root / "standby.log"), "-w", "-t", "60",
            "start")  # fmt: skip
        started.append(standby)
        in_recovery = subprocess.run(
            [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(standby_port), "-U", SUPERUSER,
             "-d", "postgres", "-Atc", "SELECT pg_is_in_recovery()"],
            capture_output=True, text=True, timeout=60, check=False,
        ).stdout.strip()  # fmt: skip
        if in_recovery != "t":
            raise ReplicaSetupError(f"the standby is not in recovery ({in_recovery!r})")
        yield StreamingPair(root, primary_port, standby_port)
    finally:
        for cluster in reversed(started):
            # Best effort: the caller's own error, if any, is the one to see.
            with contextlib.suppress(ReplicaSetupError, subprocess.TimeoutExpired):
                run("pg_ctl", "-D", str(cluster), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(root, ignore_errors=True)


async def server_major(url: str) -> int:
    """The major version of the server at a SQLAlchemy URL (postgresql+asyncpg://...)."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await connection.fetchval("SHOW server_version_num")) // 10000
    finally:
        await connection.close()
