"""Action plans reference organisations from the registry (issue 16, item 7): a name or alias
the registry knows becomes its ODS code; a name it does not know is kept as written."""

from __future__ import annotations

import uuid
from typing import Any

from app.db import Database
from app.models import Organisation


async def test_the_registry_resolves_names_in_an_imported_plan(
    api: Any, database: Database
) -> None:
    tag = uuid.uuid4().hex[:6]
    code = "N" + uuid.uuid4().hex[:2].upper().replace("O", "1")  # an independent provider
    alias = f"Hosp{tag}"
    async with database.transaction() as session:
        session.add(
            Organisation(
                id=uuid.uuid4(),
                ods_code=code,
                name=f"Registry Hospice {tag}",
                kind="hospice",
                aliases=[alias],
                settings={},
            )
        )
    header = b"Organisation,Action reference number,Actions,Delivery date,Delivery Status\n"
    rows = f"{alias},1,Teach escalation,Jul-30,G\nLocal Forum {tag},2,Hold a forum,Aug-30,A\n"
    response = await api.post(
        "/v1/action-plans/import",
        content=header + rows.encode(),
        headers={"Content-Type": "text/csv"},
        params={"dry_run": "true", "title": f"Registry plan {tag}"},
    )
    assert response.status_code == 200, response.text
    actions = [a for s in response.json()["sections"] for a in s["actions"]]
    assert actions[0]["organisations"] == [code]
    assert actions[1]["organisations"] == []
    assert actions[1]["organisation_names"] == [f"Local Forum {tag}"]
