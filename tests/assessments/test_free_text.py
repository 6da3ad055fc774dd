"""Open answers scored against rubric exemplars, with their evidence kept.

Most tests use a bag-of-words embedder (deterministic, no model) so the expected level is
obvious from the words; one runs the packaged MiniLM model on paraphrases.
"""

from __future__ import annotations

import re
import uuid
import zlib
from collections.abc import Sequence

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers import __version__
from are_workers.crypto import subject_ref
from are_workers.errors import InvalidInputError
from are_workers.models.assessments import AssessmentItem, ItemBank, ItemModel, ItemStatus
from are_workers.services.assessments import sessions
from are_workers.services.assessments.answers import score_answer
from are_workers.services.assessments.free_text import METHOD, Embed, Rubric, score_free_text
from tests.assessments.factories import (
    Bank,
    add_response,
    make_assessment,
    make_session,
    pending_item,
)
from tests.factories import make_org
from tests.media_db.conftest import assert_pseudonymous, audit_rows

RUBRIC = Rubric.model_validate(
    {
        "levels": [
            {"category": 0, "label": "weak", "exemplars": ["use a list and loop over it"]},
            {
                "category": 1,
                "label": "partial",
                "exemplars": ["use a dict for lookups", "a dictionary maps keys to values"],
            },
            {
                "category": 2,
                "label": "strong",
                "exemplars": ["a dict gives constant time average lookups by hashing keys"],
            },
        ],
        "min_similarity": 0.2,
    }
)


def bag_of_words(texts: Sequence[str]) -> np.ndarray:
    """Hashed word counts, L2-normalised: similar wording, similar vectors."""
    out = np.zeros((len(texts), 4096))
    for i, sentence in enumerate(texts):
        for word in re.findall(r"[a-z]+", sentence.lower()):
            out[i, zlib.crc32(word.encode()) % 4096] += 1
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1)


def test_the_nearest_exemplar_decides_and_is_named() -> None:
    evidence = score_free_text(
        "a dict gives constant time lookups by hashing the keys", RUBRIC, bag_of_words, model="bow"
    )
    assert (evidence.category, evidence.level) == (2, "strong")
    assert evidence.matched_exemplar is not None
    assert (evidence.matched_exemplar.level, evidence.matched_exemplar.index) == ("strong", 0)
    assert evidence.similarity == max(evidence.level_similarities.values())
    assert set(evidence.level_similarities) == {"weak", "partial", "strong"}
    assert evidence.model == "bow" and evidence.reason is None


def test_the_second_exemplar_of_a_level_can_match() -> None:
    evidence = score_free_text("a dictionary maps each key to a value", RUBRIC, bag_of_words)
    assert evidence.level == "partial"
    assert evidence.matched_exemplar is not None and evidence.matched_exemplar.index == 1


def test_unrelated_or_empty_answers_get_no_credit() -> None:
    unrelated = score_free_text("bananas are yellow", RUBRIC, bag_of_words)
    assert unrelated.category == 0 and unrelated.level is None
    assert unrelated.reason is not None and "no exemplar is similar enough" in unrelated.reason
    empty = score_free_text("   ", RUBRIC, bag_of_words)
    assert empty.category == 0 and empty.reason == "the answer is empty"


def test_ties_go_to_the_lower_level() -> None:
    rubric = Rubric.model_validate(
        {
            "levels": [
                {"category": 2, "label": "high", "exemplars": ["same words"]},
                {"category": 1, "label": "low", "exemplars": ["same words"]},
            ]
        }
    )
    assert score_free_text("same words", rubric, bag_of_words).level == "low"


def test_a_rubric_must_be_coherent() -> None:
    with pytest.raises(ValueError, match="distinct categories"):
        Rubric.model_validate(
            {"levels": [{"category": 1, "label": "a", "exemplars": ["x"]},
                        {"category": 1, "label": "b", "exemplars": ["y"]}]}
        )  # fmt: skip


def test_answer_shapes_and_keys_are_checked_with_the_question_named() -> None:
    def no_embedder() -> tuple[Embed, str | None]:
        raise AssertionError("a multiple-choice answer must not load the embedder")

    choice = {"options": [{"id": "a"}, {"id": "b"}], "scoring": {"key": "a"}}
    assert score_answer("q1", choice, {"option": "a"}, None, no_embedder).category == 1
    assert score_answer("q1", choice, {"option": "b"}, None, no_embedder).category == 0
    with pytest.raises(InvalidInputError, match=r"Option 'z' is not an option of question 'q1'"):
        score_answer("q1", choice, {"option": "z"}, None, no_embedder)
    with pytest.raises(InvalidInputError, match="expects a chosen option"):
        score_answer("q1", choice, {"text": "a"}, None, no_embedder)
    graded = {"scoring": {"categories": {"never": 0, "sometimes": 1, "always": 2}}}
    assert score_answer("q2", graded, {"option": "always"}, None, no_embedder).category == 2
    with pytest.raises(InvalidInputError, match="'q3' has an invalid scoring key"):
        score_answer("q3", {"scoring": {"key": "a", "rubric": RUBRIC.model_dump()}}, {}, None,
                     no_embedder)  # fmt: skip
    assert score_answer("q4", {}, None, 1, no_embedder).category == 1
    with pytest.raises(InvalidInputError, match="no scoring key and the answer carries no score"):
        score_answer("q4", {}, None, None, no_embedder)


def _open_bank(db: Session, org_id: uuid.UUID, n: int = 3) -> Bank:
    bank = ItemBank(organization_id=org_id, name=f"essays-{uuid.uuid4().hex[:6]}")
    db.add(bank)
    db.flush()
    items = [
        AssessmentItem(
            organization_id=org_id,
            bank_id=bank.id,
            code=f"essay{i}",
            content={
                "stem": "How would you look up users by id quickly?",
                "scoring": {"rubric": RUBRIC.model_dump()},
            },
            model=ItemModel.GRM,
            a=1.5,
            b=None,
            thresholds=[-0.5 + 0.2 * i, 0.5 + 0.2 * i],
            status=ItemStatus.ACTIVE,
        )
        for i in range(n)
    ]
    db.add_all(items)
    db.flush()
    return Bank(bank, items)


def test_an_open_answer_is_scored_in_a_session_and_its_evidence_kept(db: Session) -> None:
    org = make_org(db)
    bank = _open_bank(db, org.id)
    config = {"stopping": {"se_threshold": None, "min_items": 1, "max_items": 2}}
    session = make_session(db, org, make_assessment(db, org, bank, config=config))
    sessions.begin_session(db, org.id, session.id)
    answer = {"text": "use a dict for lookups by id"}
    rid = add_response(db, org.id, session.id, pending_item(db, session.id), answer=answer)
    calls: list[int] = []

    def embed(texts: Sequence[str]) -> np.ndarray:
        calls.append(len(texts))
        return bag_of_words(texts)

    first_rid = rid
    outcome = sessions.score_response(db, org.id, rid, embed=embed, embed_model="bow@1")
    assert outcome["category"] == 1 and calls == [5]  # answer + 4 exemplars, one call
    stored = db.execute(
        text("SELECT answer, category FROM assessment_responses WHERE id = :r"), {"r": rid}
    ).one()
    assert stored.category == 1
    assert stored.answer["text"] == answer["text"]  # the raw answer is untouched
    evidence = stored.answer["evidence"]
    assert evidence == outcome["evidence"]
    assert evidence["level"] == "partial" and evidence["model"] == "bow@1"
    assert evidence["matched_exemplar"] == {"level": "partial", "index": 0}

    # Finish the session: the audit entry names the embedding model that scored answers.
    rid = add_response(
        db, org.id, session.id, pending_item(db, session.id),
        answer={"text": "a dict gives constant time average lookups by hashing keys"},
    )  # fmt: skip
    outcome = sessions.score_response(db, org.id, rid, embed=embed, embed_model="bow@1")
    assert outcome["finished"] and outcome["category"] == 2
    (final,) = audit_rows(db, org.id, sessions.AUDIT_ACTION)
    assert final.input_refs["embedding_models"] == ["bow@1"]
    # Each open answer is its own audited decision, naming the rubric method and embedder.
    scored = audit_rows(db, org.id, sessions.FREE_TEXT_AUDIT_ACTION)
    assert sorted(row.entity_id for row in scored) == sorted([first_rid, rid])
    assert audit_rows(db, org.id, sessions.RESPONSE_AUDIT_ACTION) == []
    for row in scored:
        assert row.model_name == f"{sessions.SCORER_NAME}+{METHOD}+bow@1"
        assert row.model_version == __version__
        assert row.subject_ref == subject_ref(session.candidate_id)
        assert len(row.input_refs["rubric_sha256"]) == 64
        assert_pseudonymous(row, "use a dict", "constant time", "lookups", "hashing", "Jane Doe")
    assert_pseudonymous(final, "lookups", "hashing", "Jane Doe", allowed=["bow@1"])


@pytest.mark.slow
def test_the_real_embedder_matches_paraphrases_to_the_right_level() -> None:
    pytest.importorskip("torch")
    from are_workers.ml.embedder import get_embedder

    embedder = get_embedder()
    rubric = Rubric.model_validate(
        {
            "levels": [
                {"category": 0, "label": "off", "exemplars": [
                    "I would scan the whole list of users one by one."]},
                {"category": 1, "label": "good", "exemplars": [
                    "Put the users in a hash map keyed by id so each lookup takes constant "
                    "time on average."]},
            ],
            "min_similarity": 0.3,
        }
    )  # fmt: skip
    good = score_free_text(
        "Store users in a dictionary indexed by their id; finding one is O(1).",
        rubric, embedder.embed, model=embedder.info.key,
    )  # fmt: skip
    assert good.level == "good" and good.similarity is not None and good.similarity > 0.5
    off = score_free_text(
        "Iterate over every user in the array until the id matches.",
        rubric, embedder.embed, model=embedder.info.key,
    )  # fmt: skip
    assert off.level == "off"
    unrelated = score_free_text("The weather in Lisbon is sunny.", rubric, embedder.embed)
    assert unrelated.category == 0 and unrelated.level is None
