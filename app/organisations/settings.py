"""Per-organisation settings (issue 16, item 6): an organisation's own referral rule lists,
learning sample and due days over the deployment's. The referral rules take the settings of
the death's organisation from ``settings_for``; the rest of the configuration (time zone,
limits, priorities) stays the deployment's."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.kit.enums import Route
from app.organisations.cache import organisations
from app.organisations.schemas import OrganisationSettings

# The names of app.config.Settings an organisation may set (OrganisationSettings' fields).
OVERRIDABLE = tuple(OrganisationSettings.model_fields)


def stored_settings(body: OrganisationSettings | None) -> dict[str, Any]:
    """The settings as the organisation's row keeps them: the keys set, as JSON."""
    if body is None:
        return {}
    return body.model_dump(mode="json", exclude_none=True)


def effective_settings(settings: Settings, overrides: Mapping[str, Any] | None) -> Settings:
    """The deployment's settings with the organisation's over them; due days route by route."""
    if not overrides:
        return settings
    update: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in OVERRIDABLE or value is None:
            continue
        if name == "due_days":
            update[name] = {
                **settings.due_days,
                **{Route(route): int(days) for route, days in value.items()},
            }
        elif name == "learning_sample_percent":
            update[name] = float(value)
        else:
            update[name] = list(value)
    return settings.model_copy(update=update) if update else settings


async def settings_for(
    session: AsyncSession, settings: Settings, organisation_id: uuid.UUID | None
) -> Settings:
    """The settings the referral rules use for a death of ``organisation_id``: one lookup of
    the organisation's row (the registry is not patient data: no scope confines it)."""
    if organisation_id is None:
        return settings
    # Kept between requests, dropped when the registry changes (app.organisations.cache).
    found = (await organisations(session, [organisation_id])).get(organisation_id)
    return effective_settings(settings, found.settings if found is not None else None)
