"""The command line: ``lfd serve | migrate | clients | organisations | demo | worker | overdue |
audit | retention | history``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import date

from app.auth.scopes import SCOPE_DESCRIPTIONS
from app.clients.cli import (
    add_client_commands,
    add_organisation_options,
    add_signing_key_commands,
    clients_create,
    clients_list,
    clients_revoke,
)
from app.config import get_settings
from app.db import Database
from app.organisations.cli import add_organisation_commands


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.http_guard import guarded_protocol

    settings = get_settings()
    if not args.no_migrate:
        _upgrade_and_make_months(settings.owner_database_url)
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker counts its requests in files here, and a scrape sums them (app.metrics).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lfd-metrics-")
    uvicorn.run(
        "app.main:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        # Slow clients (app.http_guard, docs/security.md): a deadline and a size cap for the
        # headers, and the idle keep-alive timeout.
        http=guarded_protocol(),
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )
    return 0


def _upgrade_and_make_months(url: str, revision: str = "head") -> None:
    """Migrate, then make the months ahead of the partitioned tables (PostgreSQL) that a
    stopped background runner would otherwise leave missing (app.partitions)."""
    from app.migrate import upgrade
    from app.partitions import ensure_partitions_at

    upgrade(url, revision)
    if revision == "head":
        asyncio.run(ensure_partitions_at(url, get_settings().partitions_ahead_months))


def _migrate(args: argparse.Namespace) -> int:
    from app.migrate import downgrade

    url = get_settings().owner_database_url
    if args.downgrade:
        downgrade(url, args.downgrade)
    else:
        _upgrade_and_make_months(url, args.revision)
    return 0


def _service_role(args: argparse.Namespace) -> int:
    from app.migrate import grant_service_role

    password = os.environ.get(args.password_env) if args.password_env else None
    if args.password_env and password is None:
        raise SystemExit(f"lfd database service-role: {args.password_env} is not set")
    try:
        grant_service_role(get_settings().owner_database_url, args.role, password)
    except ValueError as error:
        raise SystemExit(f"lfd database service-role: {error}") from None
    print(
        f"role {args.role}: may log in, read and write rows; owns nothing; row-level "
        "security applies to it. Connect the service as it (LFD_DATABASE_URL) and migrate "
        "as the owner (LFD_MIGRATION_DATABASE_URL)."
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo
    from app.migrate import upgrade

    settings = get_settings()
    # Before the event loop: Alembic's env runs its own asyncio.run.
    upgrade(settings.owner_database_url)
    return asyncio.run(run_demo(settings, deaths=args.deaths, seed=args.seed))


async def _worker(args: argparse.Namespace) -> int:
    import signal

    from app.jobs import BACKGROUND_JOBS
    from app.logging import configure_logging
    from app.webhooks.worker import webhook_worker
    from app.worker import Worker

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    database = Database(settings)
    worker = Worker(database, args.interval or settings.worker_interval_seconds, BACKGROUND_JOBS)
    # Webhook delivery runs in its own, faster loop (LFD_WEBHOOK_WORKER_INTERVAL_SECONDS).
    webhooks = webhook_worker(database)

    def stop() -> None:
        worker.stop()
        webhooks.stop()

    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        # Stop after the running batch commits rather than in the middle of it.
        loop.add_signal_handler(stop_signal, stop)
    try:
        await asyncio.gather(worker.run(), webhooks.run())
    finally:
        await database.dispose()
    return 0


async def _mllp(args: argparse.Namespace) -> int:
    import os
    import signal

    from app.hl7v2.mllp import serve_mllp
    from app.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    key = os.environ.get("LFD_MLLP_API_KEY", "")
    database = Database(settings)
    try:
        server = await serve_mllp(database, key, args.host, args.port)
    except ValueError as error:
        print(f"lfd mllp: {error}", file=sys.stderr)
        await database.dispose()
        return 2
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop_signal, stopped.set)
    try:
        async with server:
            await stopped.wait()
    finally:
        await database.dispose()
    return 0


async def _overdue(args: argparse.Namespace) -> int:
    from app.actions.overdue import raise_overdue

    database = Database(get_settings())
    try:
        raised = await raise_overdue(database)
    finally:
        await database.dispose()
    print(f"action.overdue raised for {raised} action{'' if raised == 1 else 's'}")
    return 0


async def _audit_seal(args: argparse.Namespace) -> int:
    from app.audit.chain import seal_audit

    database = Database(get_settings())
    try:
        sealed = await seal_audit(database)
    finally:
        await database.dispose()
    print(f"sealed {sealed} audit row{'' if sealed == 1 else 's'} into the chain")
    return 0


async def _audit_verify(args: argparse.Namespace) -> int:
    from app.audit.chain import verify_audit

    database = Database(get_settings())
    try:
        report = await verify_audit(database)
    finally:
        await database.dispose()
    if args.json:
        print(
            json.dumps(
                {
                    "intact": report.intact,
                    "sealed": report.sealed,
                    "unsealed": report.unsealed,
                    "first_seq": report.first_seq,
                    "last_seq": report.last_seq,
                    "head_seq": report.head_seq,
                    "findings": [vars(finding) for finding in report.findings],
                },
                indent=2,
            )
        )
    else:
        for finding in report.findings:
            print(finding, file=sys.stderr)
        span = f"seq {report.first_seq}..{report.last_seq}" if report.sealed else "none"
        print(
            f"audit log: {report.sealed} sealed rows ({span}, head at {report.head_seq}), "
            f"{report.unsealed} not yet sealed: "
            + ("intact" if report.intact else f"{len(report.findings)} problem(s)")
        )
    return 0 if report.intact else 1


def _retention(args: argparse.Namespace) -> int:
    from app.retention import retention_command

    return asyncio.run(retention_command(get_settings(), args.dry_run, args.json))


def _history_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.history.commands import import_command

    return asyncio.run(
        import_command(get_settings(), Path(args.file), args.all_or_nothing, args.batch_size)
    )


def _history_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.history.commands import export_command

    out = Path(args.output) if args.output and args.output != "-" else None
    return asyncio.run(
        export_command(get_settings(), out, args.died_from, args.died_to, args.organisation)
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfd", description="Learning from Deaths service.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--no-migrate", action="store_true", help="do not run migrations first")
    serve.set_defaults(func=_serve)

    migrate = sub.add_parser("migrate", help="upgrade (or downgrade) the database schema")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.add_argument("--downgrade", metavar="REVISION")
    migrate.set_defaults(func=_migrate)

    clients = sub.add_parser("clients", help="manage API clients").add_subparsers(
        dest="action", required=True
    )
    width = max(len(scope.value) for scope in SCOPE_DESCRIPTIONS)
    scope_lines = "\n".join(
        f"  {scope.value:<{width}}  {text}" for scope, text in SCOPE_DESCRIPTIONS.items()
    )
    create = clients.add_parser(
        "create",
        help="create a client and print its key once",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"scopes:\n{scope_lines}",
    )
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        help="a scope (listed below); repeat the option or comma-separate",
    )
    create.add_argument(
        "--pseudonymised",
        action="store_true",
        help="a commissioner's client: pseudonyms, age bands and months instead of patient "
        "identifiers, read scopes plus actions:write, reports:read, events:read and "
        "webhooks:manage only (docs/pseudonymisation.md)",
    )
    add_organisation_options(create)
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=lambda a: asyncio.run(clients_create(a)))
    listing = clients.add_parser("list", help="list clients (never their keys)")
    listing.add_argument("--all", action="store_true", help="include revoked clients")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=lambda a: asyncio.run(clients_list(a)))
    revoke = clients.add_parser("revoke", help="revoke a client's key")
    revoke.add_argument("client_id")
    revoke.set_defaults(func=lambda a: asyncio.run(clients_revoke(a)))
    add_client_commands(clients)

    add_signing_key_commands(sub)
    add_organisation_commands(sub)

    demo = sub.add_parser(
        "demo",
        help="fill the database with three financial years of synthetic history (through the "
        "history importer) and an action plan",
    )
    demo.add_argument("--deaths", type=int, default=3000, help="how many deaths (default 3000)")
    demo.add_argument(
        "--seed", type=int, default=2026, help="the same seed gives the same history (2026)"
    )
    demo.set_defaults(func=_demo)

    worker = sub.add_parser(
        "worker", help="run the background jobs (app/jobs.py, and webhook delivery) until stopped"
    )
    worker.add_argument(
        "--interval", type=int, metavar="SECONDS", help="seconds between passes (default: setting)"
    )
    worker.set_defaults(func=lambda a: asyncio.run(_worker(a)))
    mllp = sub.add_parser(
        "mllp",
        help="listen for HL7 v2 ADT death notifications over MLLP (key in LFD_MLLP_API_KEY)",
    )
    mllp.add_argument("--host", default="127.0.0.1")
    mllp.add_argument("--port", type=int, default=2575)
    mllp.set_defaults(func=lambda a: asyncio.run(_mllp(a)))
    overdue = sub.add_parser(
        "overdue", help="raise action.overdue for actions that became overdue, once, and exit"
    )
    overdue.set_defaults(func=lambda a: asyncio.run(_overdue(a)))

    audit = sub.add_parser("audit", help="the audit log's tamper evidence").add_subparsers(
        dest="action", required=True
    )
    verify = audit.add_parser(
        "verify",
        help="check every audit row against its hash and the chain against its head; report "
        "each edited, deleted or inserted row (row id, place, day); exit 1 if any",
    )
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=lambda a: asyncio.run(_audit_verify(a)))
    seal = audit.add_parser(
        "seal", help="place the audit rows written since the last seal in the chain, and exit"
    )
    seal.set_defaults(func=lambda a: asyncio.run(_audit_seal(a)))

    retention = sub.add_parser(
        "retention",
        help="drop the audit log's and the change feed's months older than their retention "
        "(LFD_RETENTION_AUDIT_MONTHS, LFD_RETENTION_EVENT_MONTHS), whole partitions at a time, "
        "as the tables' owner (PostgreSQL; docs/operations.md)",
    )
    retention.add_argument("--dry-run", action="store_true", help="say what would be dropped")
    retention.add_argument("--json", action="store_true")
    retention.set_defaults(func=_retention)

    database = sub.add_parser(
        "database", help="PostgreSQL administration (docs/organisations.md)"
    ).add_subparsers(dest="action", required=True)
    role = database.add_parser(
        "service-role",
        help="make the role the service connects as: reads and writes rows, owns nothing, "
        "cannot bypass row-level security (run as the tables' owner, after migrate)",
    )
    role.add_argument("role", help="the role's name, e.g. lfd_service")
    role.add_argument(
        "--password-env", metavar="VAR", help="set its password from this environment variable"
    )
    role.set_defaults(func=_service_role)

    history = sub.add_parser(
        "history", help="import or export a trust's history (docs/history.md)"
    ).add_subparsers(dest="action", required=True)
    importing = history.add_parser(
        "import",
        help="import a history bundle (JSON Lines) with its own dates; run again to resume",
    )
    importing.add_argument(
        "file", help="the bundle (.jsonl), or a folder holding a CSV set (deaths.csv, ...)"
    )
    importing.add_argument(
        "--all-or-nothing", action="store_true", help="refuse the whole bundle if any record is"
    )
    importing.add_argument("--batch-size", type=int, metavar="N", help="records per commit")
    importing.set_defaults(func=_history_import)
    exporting = history.add_parser("export", help="write every death as a history bundle")
    exporting.add_argument("--from", dest="died_from", type=date.fromisoformat, metavar="DATE")
    exporting.add_argument("--to", dest="died_to", type=date.fromisoformat, metavar="DATE")
    exporting.add_argument("--output", "-o", metavar="FILE", help="default: standard output")
    exporting.add_argument(
        "--organisation",
        metavar="ODS_CODE_OR_ID",
        help="only the deaths this organisation records (a trust leaving a regional deployment)",
    )
    exporting.set_defaults(func=_history_export)
    return parser


# The commands that make the database when it is missing (they migrate it first); every other
# command needs the database the service uses, and stops with its absolute path if it is
# missing rather than make an empty one (SQLite would).
CREATES_DATABASE = frozenset({"serve", "migrate", "demo"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from app.cli_database import announce_new_database, require_existing_database

    if args.command in CREATES_DATABASE:
        announce_new_database(get_settings())
    else:
        require_existing_database(get_settings())
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
