"""The one place that decides what a client is shown of a patient.

A route builds its full response as before, then passes it through the caller's ``View``:

    view = await view_for(database, principal)
    return conditional.reply(
        tag, view.show(death, pseudonymised.death_detail), pseudonymised=view.pseudonymised
    )

For a full client ``show`` returns its argument unchanged. For a pseudonymised client it
returns the pseudonymised model made from it by the domain's own function
(``app/<domain>/pseudonymised.py``, given by the route): identifiers replaced by the keyed
pseudonym, dates coarsened to months, free text about a patient left out. The audit row of the
read is written by the service as for any client (it names the client, whose flag says which
view it got).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from app.auth.principal import Principal
from app.db import Database
from app.privacy.pseudonym import pseudonym_key

Full = TypeVar("Full")
Shown = TypeVar("Shown")


@dataclass(frozen=True)
class View:
    """How one caller is shown patient data: in full (``key`` None) or pseudonymised."""

    key: bytes | None

    @property
    def pseudonymised(self) -> bool:
        return self.key is not None

    def show(self, full: Full, pseudonymise: Callable[[bytes, Full], Shown]) -> Full | Shown:
        return full if self.key is None else pseudonymise(self.key, full)

    def show_all(
        self, items: Sequence[Full], pseudonymise: Callable[[bytes, Full], Shown]
    ) -> list[Full | Shown]:
        key = self.key
        if key is None:
            return list(items)
        return [pseudonymise(key, item) for item in items]


FULL = View(None)


async def view_for(database: Database, principal: Principal) -> View:
    """The caller's view. The pseudonym key is read once per process (and per database)."""
    if not principal.pseudonymised:
        return FULL
    async with database.autocommit() as session:
        key = await pseudonym_key(session, database.settings.pseudonym_key)
    return View(key)
