"""Fixtures of the schema tests: a ready tenant graph, and a helper asserting that a write
is rejected by a *named* constraint (so a test cannot pass on the wrong error)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tests.factories import Graph, make_graph

Violates = Callable[[str], AbstractContextManager[None]]


@pytest.fixture
def graph(db: Session) -> Graph:
    return make_graph(db)


@pytest.fixture
def violates(db: Session) -> Violates:
    """``with violates("fk_..."):`` — the block's writes must fail naming that constraint.

    The block runs in a savepoint that is rolled back, so the session stays usable.
    """

    @contextmanager
    def _violates(name: str) -> Iterator[None]:
        with pytest.raises(DBAPIError) as caught, db.begin_nested():  # noqa: PT012
            yield
            db.flush()
        assert name in str(caught.value), f"expected {name}, got: {caught.value}"

    return _violates
