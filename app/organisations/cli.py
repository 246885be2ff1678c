"""`lfd organisations list | show | create | load | adopt`: the registry from the command line
(docs/organisations.md), through the same service code and rules as the API, every change
audited under the command line's own deployment-level client."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import get_settings
from app.db import Database
from app.errors import ProblemError
from app.models import ApiClient, Organisation
from app.organisations import registry
from app.organisations.adopt import AdoptionRefused, adopt
from app.organisations.loader import LoadError, load_file
from app.organisations.registry import OrganisationFilters
from app.organisations.rules import Kind
from app.organisations.schemas import OrganisationCreate, OrganisationOut

CLIENT_NAME = "lfd organisations (command line)"


class _DryRun(Exception):
    """Raised at the end of a dry run, so that its transaction rolls back."""


async def cli_principal(session: AsyncSession) -> Principal:
    """The command line's own client (made once, at deployment level): the audit rows name it,
    and the operating-system user who ran the command as the one it acted for."""
    client = await session.scalar(
        select(ApiClient)
        .where(ApiClient.name == CLIENT_NAME, ApiClient.revoked_at.is_(None))
        .order_by(ApiClient.created_at)
        .limit(1)
    )
    if client is None:
        made = await create_client(session, CLIENT_NAME, [Scope.admin], deployment_level=True)
        client = made.client
    return Principal.of_client(client, getpass.getuser())


async def find_any(session: AsyncSession, reference: str) -> Organisation | None:
    """An organisation by its id, its ODS code or one of its aliases."""
    found = await registry.find_organisation(session, reference)
    return found or await registry.find_by_alias(session, reference)


def _problem_exit(error: ProblemError) -> SystemExit:
    lines = [f"lfd organisations: {error.detail or error.title}"]
    lines += [f"  {e['pointer'].lstrip('/')}: {e['detail']}" for e in error.errors or []]
    return SystemExit("\n".join(lines))


async def _run(work: Any) -> Any:
    database = Database(get_settings())
    try:
        async with database.transaction() as session:
            return await work(session)
    except ProblemError as error:
        raise _problem_exit(error) from None
    finally:
        await database.dispose()


def _line(out: OrganisationOut, codes: dict[uuid.UUID, str]) -> str:
    parent = f"  under {codes.get(out.parent_id, str(out.parent_id))}" if out.parent_id else ""
    flags = (" [default]" if out.is_default else "") + (" [closed]" if out.closed_at else "")
    return f"{out.ods_code or '-':<9} {out.kind.value:<22} {out.name}{parent}{flags}"


async def _codes(session: AsyncSession) -> dict[uuid.UUID, str]:
    rows = await session.execute(select(Organisation.id, Organisation.ods_code, Organisation.name))
    return {row_id: code or name for row_id, code, name in rows}


async def _list(args: argparse.Namespace) -> int:
    filters = OrganisationFilters(kind=args.kind, parent=args.parent, q=args.q)

    async def work(session: AsyncSession) -> tuple[list[OrganisationOut], dict[uuid.UUID, str]]:
        items: list[OrganisationOut] = []
        cursor = None
        while True:
            page, cursor = await registry.list_organisations(session, filters, cursor, 200)
            items += page
            if cursor is None:
                return items, await _codes(session)

    items, codes = await _run(work)
    if args.json:
        print(json.dumps([item.model_dump(mode="json") for item in items]))
    else:
        for item in items:
            print(_line(item, codes))
        print(f"{len(items)} organisation{'' if len(items) == 1 else 's'}", file=sys.stderr)
    return 0


async def _show(args: argparse.Namespace) -> int:
    async def work(session: AsyncSession) -> tuple[OrganisationOut, dict[uuid.UUID, str], int]:
        found = await find_any(session, args.organisation)
        if found is None:
            raise SystemExit(f"lfd organisations: no organisation {args.organisation!r}")
        children = await session.scalar(
            select(func.count()).where(Organisation.parent_id == found.id)
        )
        return registry.organisation_out(found), await _codes(session), int(children or 0)

    out, codes, children = await _run(work)
    if args.json:
        print(json.dumps(out.model_dump(mode="json")))
        return 0
    print(_line(out, codes))
    print(f"id:       {out.id}")
    print(f"aliases:  {', '.join(out.aliases) or '-'}")
    print(f"under it: {children} organisation{'' if children == 1 else 's'}")
    settings = out.settings.model_dump(exclude_none=True)
    shown = json.dumps(settings) if settings else "(the deployment's)"
    print(f"settings: {shown}")
    return 0


async def _create(args: argparse.Namespace) -> int:
    async def work(session: AsyncSession) -> OrganisationOut:
        parent_id = None
        if args.parent:
            parent = await find_any(session, args.parent)
            if parent is None:
                raise SystemExit(f"lfd organisations: no organisation {args.parent!r}")
            parent_id = parent.id
        try:
            body = OrganisationCreate(
                ods_code=args.ods_code,
                name=args.name,
                kind=args.kind,
                parent_id=parent_id,
                aliases=args.alias or [],
            )
        except ValidationError as error:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in error.errors())
            raise SystemExit(f"lfd organisations create: not valid: {fields}") from None
        principal = await cli_principal(session)
        return await registry.create_organisation(session, principal, body, uuid.uuid4())

    out = await _run(work)
    if args.json:
        print(json.dumps(out.model_dump(mode="json")))
    else:
        print(f"created {out.id}: {out.ods_code or '-'} {out.name} ({out.kind.value})")
    return 0


def _load_command(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"lfd organisations load: no file {path}")
    return asyncio.run(_load(args, path))


async def _load(args: argparse.Namespace, path: Path) -> int:
    async def work(session: AsyncSession) -> Any:
        summary = await load_file(session, await cli_principal(session), path, args.kind)
        if args.dry_run:
            raise _DryRun(summary)
        return summary

    try:
        summary = await _run(work)
    except _DryRun as dry:
        summary = dry.args[0]
    except LoadError as error:
        raise SystemExit(f"lfd organisations load: {error}") from None
    if args.json:
        outcomes = [vars(outcome) for outcome in sorted(summary.outcomes, key=lambda o: o.line)]
        print(json.dumps({"dry_run": args.dry_run, "outcomes": outcomes}))
    else:
        lines = summary.lines()
        if args.dry_run:
            lines[0] += ": a dry run, nothing was written"
        print("\n".join(lines))
    return 0


async def _adopt(args: argparse.Namespace) -> int:
    async def work(session: AsyncSession) -> Any:
        principal = await cli_principal(session)
        try:
            return await adopt(session, principal, args.ods_code, args.name, args.kind)
        except AdoptionRefused as error:
            raise SystemExit(f"lfd organisations adopt: {error}") from None

    adoption = await _run(work)
    organisation = adoption.organisation
    print(f"the default organisation is {organisation.ods_code} {organisation.name}")
    if adoption.moved_from is not None:
        moved = ", ".join(f"{count} {label}" for label, count in adoption.moved.items() if count)
        print(f"moved from {adoption.moved_from.id} (now closed): {moved or 'nothing'}")
    return 0


def _kind(text: str) -> Kind:
    try:
        return Kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown kind {text!r}; one of {', '.join(kind.value for kind in Kind)}"
        ) from None


def add_organisation_commands(sub: Any) -> None:
    group = sub.add_parser(
        "organisations", help="the registry of organisations (docs/organisations.md)"
    ).add_subparsers(dest="action", required=True)
    kinds = ", ".join(kind.value for kind in Kind)

    listing = group.add_parser("list", help="list the registry by name")
    listing.add_argument("--kind", type=_kind, help=f"only this kind ({kinds})")
    listing.add_argument("--parent", help="only those under this organisation (id or ODS code)")
    listing.add_argument("--q", help="names, codes and aliases containing this text")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=lambda a: asyncio.run(_list(a)))

    show = group.add_parser("show", help="one organisation, by id, ODS code or alias")
    show.add_argument("organisation")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=lambda a: asyncio.run(_show(a)))

    create = group.add_parser("create", help="register an organisation")
    create.add_argument("--name", required=True)
    create.add_argument("--kind", required=True, type=_kind, help=kinds)
    create.add_argument("--ods-code")
    create.add_argument("--parent", help="its parent: id, ODS code or alias")
    create.add_argument("--alias", action="append", help="another name it goes by (repeat)")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=lambda a: asyncio.run(_create(a)))

    load = group.add_parser(
        "load",
        help="load an ODS file (etr.csv, ets.csv, epraccur.csv, eccg.csv ...) or a headed CSV "
        "(ods_code,name,kind,parent_ods_code,aliases); run it again to update",
    )
    load.add_argument("file")
    load.add_argument(
        "--kind", type=_kind, help="the kind of every row (default: from each code's format)"
    )
    load.add_argument("--dry-run", action="store_true", help="report, write nothing")
    load.add_argument("--json", action="store_true")
    load.set_defaults(func=_load_command)

    adopting = group.add_parser(
        "adopt",
        help="name the default organisation, which owns what was recorded before "
        "organisations (or move what it owns to the organisation with that code)",
    )
    adopting.add_argument("--ods-code", required=True)
    adopting.add_argument("--name", required=True)
    adopting.add_argument("--kind", type=_kind, help="default: trust (or the existing one's)")
    adopting.set_defaults(func=lambda a: asyncio.run(_adopt(a)))
