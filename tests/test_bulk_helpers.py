"""The bulk import's helpers (issue 14): ids as good as uuid4()'s and never shared with a
forked child; the collector paused and put back as it was; the plain-text test that lets a
line skip the text rules only when they could change nothing; a Timestamp's range check."""

from __future__ import annotations

import gc
import os
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError

from app.kit import ids
from app.kit.collector import between_batches, bulk_collection
from app.kit.schemas import PLAIN_TEXT, RequestModel, Timestamp, plain_text
from app.kit.text import clean_text


def test_ids_are_random_version_4_uuids() -> None:
    made = [ids.uuid4() for _ in range(5000)]
    assert len(set(made)) == 5000
    for value in made[:50]:
        assert isinstance(value, uuid.UUID)
        assert (value.version, value.variant) == (4, uuid.RFC_4122)
        assert uuid.UUID(str(value)) == value and hash(uuid.UUID(str(value))) == hash(value)
        assert uuid.UUID(bytes=value.bytes) == value


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_draws_its_own_ids() -> None:
    ids.uuid4()  # the parent has a pool drawn
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read)
        os.write(write, ids.uuid4().bytes)
        os._exit(0)
    os.close(write)
    theirs = os.read(read, 16)
    os.close(read)
    os.waitpid(child, 0)
    mine = {ids.uuid4().bytes for _ in range(600)}  # more than one draw: the whole pool
    assert theirs not in mine


def test_bulk_collection_pauses_the_collector_and_puts_it_back() -> None:
    was = gc.isenabled()
    frozen = gc.get_freeze_count()
    with bulk_collection():
        assert not gc.isenabled()
        assert gc.get_freeze_count() > frozen
        with bulk_collection():  # nested: still paused when the inner block ends
            pass
        assert not gc.isenabled()
        for _ in range(40):
            between_batches()
    assert gc.isenabled() == was
    assert gc.get_freeze_count() == frozen


def test_between_batches_collects_cycles_made_meanwhile() -> None:
    class Node:
        other: object = None

    with bulk_collection():
        for _ in range(20_000):
            a, b = Node(), Node()
            a.other, b.other = b, a
        del a, b
        before = gc.get_count()[0]
        for _ in range(16):
            between_batches()
        assert gc.get_count()[0] < before


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        (b'{"name": "Alex Example", "n": 1}', True),
        (b'{"name": "Ren\\u00e9e"}', False),  # an escape: may be anything
        ('{"name": "Renée"}'.encode(), False),  # non-ASCII: may need NFC
        (b'{"note": "a\\tb"}', False),
        (b'{"note": "del\x7f"}', False),
    ],
)
def test_plain_text_is_only_text_the_rules_leave_as_it_is(raw: bytes, plain: bool) -> None:
    assert plain_text(raw) is plain


def test_the_plain_text_context_skips_only_what_the_rules_would_not_change() -> None:
    class Body(RequestModel):
        name: str
        notes: list[str]

    value = {"name": "Alex  Example", "notes": ["one", "two"]}
    assert Body.model_validate(value, context=PLAIN_TEXT) == Body.model_validate(value)
    assert clean_text("Alex  Example", name=True) == "Alex  Example"
    with pytest.raises(ValidationError):
        Body.model_validate({"name": "bad\x00", "notes": []})


def test_a_timestamp_out_of_range_is_refused_and_ordinary_ones_pass() -> None:
    class At(BaseModel):
        at: Timestamp

    assert At(at=datetime(2017, 5, 3, 14, 20, tzinfo=UTC)).at.year == 2017
    late = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    with pytest.raises(ValidationError):
        At(at=late)
    early = datetime(1, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=5)))
    with pytest.raises(ValidationError):
        At(at=early)
