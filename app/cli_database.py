"""The command line's check that it is about to use the database the service uses: a SQLite
URL with a relative path names a different file in every directory, and SQLite would silently
make a new, empty one. Commands that expect a database (every one but serve, migrate and
demo) refuse with the absolute path they looked at instead; the three that make one say where
when they do."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from app.config import Settings


def sqlite_path(settings: Settings) -> Path | None:
    """The absolute path of the SQLite file, or None for another database or :memory:."""
    if not settings.is_sqlite:
        return None
    database = make_url(settings.database_url).database
    if not database or database == ":memory:":
        return None
    return Path(database).resolve()


def require_existing_database(settings: Settings) -> None:
    path = sqlite_path(settings)
    if path is not None and not path.is_file():
        raise SystemExit(
            f"no database at {path}: LFD_DATABASE_URL ({settings.database_url}) is resolved "
            "from the current directory. Run this from the directory `lfd serve` runs in, or set "
            "LFD_DATABASE_URL to an absolute path (sqlite+aiosqlite:////abs/path/lfd.db) or to "
            "PostgreSQL; `lfd migrate` makes a new database."
        )


def announce_new_database(settings: Settings) -> None:
    """Say, on standard error, where a new SQLite database is about to be made (never
    silently in whatever directory the command happens to run in)."""
    path = sqlite_path(settings)
    if path is not None and not path.is_file():
        print(
            f"lfd: no database at {path}; making a new one there (LFD_DATABASE_URL is "
            f"{settings.database_url}; set it to an absolute path to use another)",
            file=sys.stderr,
        )
