"""The global skills upsert must not deadlock when two workers ingest at once.

Seen in the demo: ``deadlock detected … while inserting index tuple in relation "skills"``.
Two transactions each insert new skills in the order their resume mentions them; when the
orders cross, each waits for the other's uncommitted index tuple. A row trigger makes the
interleaving deterministic: before its second row, each session waits (a few seconds at
most) until the other has inserted its first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from are_workers.models.engine import make_engine
from are_workers.services.skills import get_taxonomy, skill_ids

BARRIER_TRIGGER = """
CREATE FUNCTION are_test_skills_barrier() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n int := coalesce(nullif(current_setting('are_test.rows', true), ''), '0')::int + 1;
    me bigint := current_setting('are_test.me')::bigint;
    other bigint := current_setting('are_test.other')::bigint;
    waited int := 0;
BEGIN
    PERFORM set_config('are_test.rows', n::text, true);
    IF n = 2 THEN
        PERFORM pg_advisory_unlock(me);  -- "my first row is in"
        WHILE waited < 40 LOOP  -- until the other's first row is in (4 s at most)
            IF pg_try_advisory_lock(other) THEN
                PERFORM pg_advisory_unlock(other);
                EXIT;
            END IF;
            PERFORM pg_sleep(0.1);
            waited := waited + 1;
        END LOOP;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER are_test_skills_barrier BEFORE INSERT ON skills
    FOR EACH ROW EXECUTE FUNCTION are_test_skills_barrier();
"""


@pytest.fixture
def owner(isolated_database: str) -> Iterator[Engine]:
    engine = make_engine(isolated_database, pool_size=3, application_name="are-skills-race")
    with engine.begin() as conn:
        conn.execute(text(BARRIER_TRIGGER))
    yield engine
    engine.dispose()


def test_two_ingests_with_crossing_skill_orders_do_not_deadlock(owner: Engine) -> None:
    taxonomy = get_taxonomy()
    orders = {1: ["Python", "PostgreSQL", "Docker"], 2: ["Docker", "PostgreSQL", "Python"]}
    ready = threading.Barrier(2, timeout=10)
    errors: dict[int, BaseException] = {}
    results: dict[int, dict[str, object]] = {}

    def ingest(me: int) -> None:
        other = 3 - me
        with owner.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": 7700 + me})
            conn.execute(text("SELECT set_config('are_test.me', :k, false)"), {"k": str(7700 + me)})
            conn.execute(
                text("SELECT set_config('are_test.other', :k, false)"), {"k": str(7700 + other)}
            )
            conn.commit()
            ready.wait()  # both hold their gate before either inserts
            try:
                with Session(bind=conn) as session:
                    results[me] = dict(skill_ids(session, taxonomy, orders[me]))
                    session.commit()
            except BaseException as exc:
                errors[me] = exc
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock_all()"))

    threads = [threading.Thread(target=ingest, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, {n: str(e).splitlines()[0] for n, e in errors.items()}
    assert results[1] == results[2] and set(results[1]) == {"Python", "PostgreSQL", "Docker"}
    with owner.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM skills")).scalar_one() == 3
