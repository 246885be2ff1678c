"""The base of what a pseudonymised client (a commissioner) is shown, resource by resource.

Each domain keeps its own pseudonymised models and the functions that make them beside its
schemas (app/<domain>/pseudonymised.py); they derive from ``PseudonymisedModel`` here. Each
such model stands in for a full response model when the caller's client is marked
pseudonymised (``app.privacy.views`` makes the swap). They are allow-lists: a field exists here
only if it was judged safe to show, so a field added to a full model later stays hidden from
commissioners until someone adds it here on purpose. docs/pseudonymisation.md says why each
field is kept, coarsened or dropped.

Unknown fields are forbidden, so that a full body can never validate as one of these (the
routes declare ``Full | Pseudonymised`` and must not confuse the two).
"""

from __future__ import annotations

from pydantic import ConfigDict

from app.kit.schemas import ResponseModel

MONTH = "A month in UK local time, `YYYY-MM`."


class PseudonymisedModel(ResponseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")
