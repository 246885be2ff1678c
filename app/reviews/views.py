"""Review rows to response bodies, with the scale labels beside the scores."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Review
from app.reviews.care import shown
from app.reviews.labels import label_table, labelled
from app.reviews.schemas import ReviewOut


async def review_out(session: AsyncSession, review: Review) -> ReviewOut:
    labels = await label_table(session)
    return ReviewOut.model_validate(
        {
            **{
                name: getattr(review, name)
                for name in ReviewOut.model_fields
                if name not in {"review", "follow_on_referrals"}
            },
            "review": await shown(session, labelled(review.detail, labels)),
        }
    )


async def reviews_of_death(session: AsyncSession, death_id: uuid.UUID) -> list[ReviewOut]:
    rows = await session.scalars(
        select(Review).where(Review.death_id == death_id).order_by(Review.created_at)
    )
    return [await review_out(session, row) for row in rows.all()]
