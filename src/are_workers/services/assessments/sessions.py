"""Adaptive sessions against the database: present the first item, score each answer, record
the final result, and record why an answer was rejected.

Why these are plain functions over a Session: the actor gives them ``current_job().session``,
whose commit is the job's completion on the ledger, so an answer's effects (the response's
score, the new engine state, the exposure counters, the result, the usage record and the
audit entry) commit exactly once, together, or not at all. Tests call them with a savepoint
session directly.

Idempotency is by response id: a response that already has ``theta_after`` was scored, and
scoring it again returns the stored outcome and writes nothing (no audit row either). The
engine's ``now`` is the response's ``answered_at`` (when the candidate answered), not the
clock, so a re-run computes the same step and a queue delay never expires an answer given in
time.

Audit: each scored answer is an automated decision (``assessment.response_scored``, or
``assessment.free_text_scored`` when an embedder chose an open answer's category), and so is
the final result (``assessment.scored``): one row each, in the same transaction, naming the
scorer and its version, with ids and hashes only, never the answer, the category or the
estimate (the log outlives erasure).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers import __version__
from are_workers.crypto import json_sha256
from are_workers.errors import InvalidInputError, NotFoundError, PermanentError
from are_workers.job_context import current_job_id
from are_workers.services.assessments import store
from are_workers.services.assessments.answers import (
    EmbedderProvider,
    ScoredAnswer,
    score_answer,
)
from are_workers.services.assessments.engine import (
    Answer,
    AssessmentResult,
    CatConfig,
    SessionState,
    SessionStatus,
    final_result,
    is_expired,
    start_session,
    step,
)
from are_workers.services.assessments.free_text import METHOD as FREE_TEXT_METHOD
from are_workers.services.assessments.free_text import Embed
from are_workers.services.compliance import audit

log = structlog.get_logger(__name__)

#: The scoring method as named in the model registry and the audit log.
SCORER_NAME = "are-irt-cat"
AUDIT_ACTION = "assessment.scored"
RESPONSE_AUDIT_ACTION = "assessment.response_scored"
FREE_TEXT_AUDIT_ACTION = "assessment.free_text_scored"

#: Keys of ``assessment_sessions.state`` that the workers own (the ATS merges, never replaces).
RESULT_KEY = "result"
REJECTIONS_KEY = "rejected_responses"


def _as_uuid(value: uuid.UUID | str, what: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise InvalidInputError(f"{what} {value!r} is not a valid id.", code="invalid_id") from None


# --- starting ------------------------------------------------------------------------------------


def begin_session(
    db: Session,
    organization_id: uuid.UUID,
    assessment_session_id: uuid.UUID | str,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Choose the first item of an open session and create its engine state.

    Idempotent: a session that already has its engine state returns its pending item. A
    session past its deadline is refused (``session_expired``) rather than started.
    """
    session_id = _as_uuid(assessment_session_id, "Assessment session")
    session = store.lock_session(db, organization_id, session_id)
    adaptive = store.lock_adaptive(db, organization_id, session_id)
    if adaptive is not None:
        return {
            "session_id": str(session_id),
            "next_item_id": str(adaptive.next_item_id) if adaptive.next_item_id else None,
            "started": False,
        }
    _require_open(session)
    now = now or datetime.now(UTC)
    if now >= session.expires_at:
        raise InvalidInputError(
            "The time for this assessment has run out before it was started.",
            code="session_expired",
        )
    test = store.load_test(db, organization_id, session.assessment_id)
    config = store.with_deadline(test.config, session.started_at, session.expires_at)
    items = store.load_bank(db, organization_id, test.bank_id)
    store.count_session_start(db, organization_id, test.bank_id)
    state = start_session(
        items.bank,
        config,
        seed=store.default_seed(session_id),
        now=now,
        exposure=store.exposure_snapshot(db, organization_id, items),
    )
    next_item = store.pending_item_id(state, items)
    if next_item is not None:
        store.count_administration(db, organization_id, next_item)
    store.insert_adaptive(db, organization_id, session_id, state, items, config)
    db.execute(
        text(
            """UPDATE assessment_sessions SET items_administered = :n, updated_at = now()
               WHERE organization_id = :org AND id = :id"""
        ),
        {"org": organization_id, "id": session_id, "n": len(state.items)},
    )
    return {
        "session_id": str(session_id),
        "next_item_id": str(next_item) if next_item else None,
        "started": True,
    }


# --- scoring -------------------------------------------------------------------------------------

_RESPONSE = text(
    """
    SELECT id, session_id, item_id, position, category, answer, theta_after, se_after,
           answered_at
    FROM assessment_responses
    WHERE organization_id = :org AND id = :id
    """
)


def score_response(
    db: Session,
    organization_id: uuid.UUID,
    response_id: uuid.UUID | str,
    *,
    embed: Embed | None = None,
    embed_model: str | None = None,
) -> dict[str, Any]:
    """Score one answer, update theta and SE, choose the next item or finish the session.

    Raises ``NotFoundError`` for a response not in this organization, and
    ``InvalidInputError`` (message for people, never retried) for an answer to a closed or
    expired session, to an item not presented or already answered, or that cannot be scored.
    ``embed`` scores open answers (default: the process-wide embedder, loaded on first use).
    ``job_id`` makes the usage record idempotent per job.
    """
    job_id = current_job_id()
    rid = _as_uuid(response_id, "Answer")
    first = db.execute(_RESPONSE, {"org": organization_id, "id": rid}).one_or_none()
    if first is None:
        raise NotFoundError(f"Answer {rid} does not exist in this organization.")
    session = store.lock_session(db, organization_id, first.session_id)
    # Read again under the session lock: a concurrent delivery may have scored it meanwhile.
    response = db.execute(_RESPONSE, {"org": organization_id, "id": rid}).one()
    adaptive = store.lock_adaptive(db, organization_id, session.id)
    if response.theta_after is not None:
        return _outcome(response, session, adaptive, replayed=True)
    _require_open(session)
    if adaptive is None:
        raise InvalidInputError(
            "This assessment has not started: no question has been presented yet.",
            code="session_not_started",
        )

    test = store.load_test(db, organization_id, session.assessment_id)
    config = store.with_deadline(test.config, session.started_at, session.expires_at)
    items = store.load_bank(
        db,
        organization_id,
        test.bank_id,
        also_item_ids=[*store.administered_ids(adaptive), response.item_id],
    )
    code = items.codes.get(response.item_id)
    if code is None:
        code = store.item_code(db, organization_id, response.item_id)
        raise InvalidInputError(
            f"Question '{code}' is not part of this assessment.", code="unknown_item"
        )
    state = store.rebuild_state(
        session,
        adaptive,
        items,
        store.answered_times(db, organization_id, session.id),
        config,
    )
    _require_pending(config, state, code, response.answered_at)
    scored = score_answer(
        code,
        items.content.get(code),
        response.answer,
        response.category,
        _embedder_provider(embed, embed_model),
    )
    new_state = step(
        items.bank,
        config,
        state,
        Answer(item_id=code, response=scored.category),
        now=response.answered_at,
        exposure=store.exposure_snapshot(db, organization_id, items),
    )

    _store_step(db, organization_id, response, scored, adaptive, items, new_state)
    _audit_response(db, organization_id, session, test, items, code, response, scored,
                    new_state, job_id=job_id)  # fmt: skip
    if new_state.status is SessionStatus.FINISHED:
        _finish(db, organization_id, session, test, items, config, new_state, job_id=job_id)
    response = db.execute(_RESPONSE, {"org": organization_id, "id": rid}).one()
    session = store.lock_session(db, organization_id, session.id)
    adaptive = store.lock_adaptive(db, organization_id, session.id)
    return _outcome(response, session, adaptive, replayed=False)


def _store_step(
    db: Session,
    organization_id: uuid.UUID,
    response: Any,
    scored: ScoredAnswer,
    adaptive: store.AdaptiveRow,
    items: store.BankItems,
    state: SessionState,
) -> None:
    """The answer's score, the exposure of the next item, the engine state, the estimate."""
    answer = response.answer
    if scored.evidence is not None:
        answer = {**(answer or {}), "evidence": scored.evidence}
    db.execute(
        text(
            """UPDATE assessment_responses
               SET category = :category, theta_after = :theta, se_after = :se,
                   answer = CAST(:answer AS jsonb)
               WHERE organization_id = :org AND id = :id"""
        ),
        {
            "org": organization_id,
            "id": response.id,
            "category": scored.category,
            "theta": state.theta,
            "se": state.se,
            "answer": json.dumps(answer) if answer is not None else None,
        },
    )
    next_item = store.pending_item_id(state, items)
    if next_item is not None:
        store.count_administration(db, organization_id, next_item)
    store.save_adaptive(db, organization_id, adaptive, state, items)
    db.execute(
        text(
            """UPDATE assessment_sessions
               SET theta = :theta, se = :se, items_administered = :n, updated_at = now()
               WHERE organization_id = :org AND id = :id"""
        ),
        {
            "org": organization_id,
            "id": response.session_id,
            "theta": state.theta,
            "se": state.se,
            "n": len(state.items),
        },
    )


def _require_open(session: store.SessionRow) -> None:
    if session.status == "expired":
        raise InvalidInputError(
            "The time limit for this assessment has passed; this answer was not recorded.",
            code="session_expired",
        )
    if session.status == "abandoned":
        raise InvalidInputError(
            "This assessment was closed before it was finished; no more answers are accepted.",
            code="session_closed",
        )
    if session.status in store.CLOSED_STATUSES:
        raise InvalidInputError(
            "This assessment is already finished; no more answers are accepted.",
            code="session_closed",
        )


def _require_pending(config: CatConfig, state: SessionState, code: str, now: datetime) -> None:
    """The engine's own checks, in its order, made *before* the answer is scored.

    Why before: scoring an open answer loads the embedder, and an answer to the wrong
    question should be refused as such, not for its shape. The message also names the
    question that is awaiting an answer.
    """
    if is_expired(config, state, now):
        raise InvalidInputError(
            "The time limit for this assessment has passed; this answer was not recorded.",
            code="session_expired",
        )
    if code in {item.item_id for item in state.answered}:
        raise InvalidInputError(
            f"Question '{code}' has already been answered.", code="item_already_answered"
        )
    pending = state.pending_item_id
    if code != pending:
        expected = f" The question awaiting an answer is '{pending}'." if pending else ""
        raise InvalidInputError(
            f"Question '{code}' was not presented in this session.{expected}",
            code="item_not_administered",
        )


def _embedder_provider(embed: Embed | None, model: str | None) -> EmbedderProvider:
    def provide() -> tuple[Embed, str | None]:
        if embed is not None:
            return embed, model
        from are_workers.ml.embedder import get_embedder

        embedder = get_embedder()
        return embedder.embed, embedder.info.key

    return provide


def _finish(
    db: Session,
    organization_id: uuid.UUID,
    session: store.SessionRow,
    test: store.TestDefinition,
    items: store.BankItems,
    config: CatConfig,
    state: SessionState,
    *,
    job_id: uuid.UUID | None,
) -> AssessmentResult:
    """Store the final result, bill the assessment and audit the automated decision.

    Runs once per session: it is reached only by the step that moves an open session (locked)
    to completed.
    """
    norm_group_id, norms = store.load_norms(
        db, organization_id, session.assessment_id, session.norm_group_id
    )
    result = final_result(items.bank, config, state, norms)
    document = result.model_dump(mode="json") | {
        "norm_group_id": str(norm_group_id) if norm_group_id else None
    }
    db.execute(
        text(
            """UPDATE assessment_sessions
               SET status = 'completed', completed_at = :finished, theta = :theta, se = :se,
                   percentile = :percentile, items_administered = :n,
                   norm_group_id = COALESCE(norm_group_id, :norm_group),
                   state = jsonb_set(state, ARRAY[CAST(:key AS text)], CAST(:result AS jsonb)),
                   updated_at = now()
               WHERE organization_id = :org AND id = :id"""
        ),
        {
            "org": organization_id,
            "id": session.id,
            "finished": state.finished_at,
            "theta": result.theta,
            "se": result.se,
            "percentile": result.percentile,
            "n": len(state.items),
            "norm_group": norm_group_id,
            "key": RESULT_KEY,
            "result": json.dumps(document),
        },
    )
    from are_workers.models.ai_evaluations import ModelKind
    from are_workers.models.subscription import UsageKind, UsageUnit
    from are_workers.services.model_registry import ensure_model_version, record_usage

    model_version_id = ensure_model_version(
        db, kind=ModelKind.RULES, name=SCORER_NAME, version=__version__
    )
    record_usage(
        db,
        organization_id=organization_id,
        kind=UsageKind.ASSESSMENT_SCORING,
        quantity=result.items_answered,
        unit=UsageUnit.ITEM,
        model_version_id=model_version_id,
    )
    _audit(db, organization_id, session, test, items, result, document, job_id=job_id)
    log.info(
        "assessment_session_finished",
        session_id=str(session.id),
        items=result.items_answered,
        stop_reason=result.stop_reason,
    )
    return result


_EMBEDDING_MODELS = text(
    """
    SELECT DISTINCT answer->'evidence'->>'model' AS model FROM assessment_responses
    WHERE organization_id = :org AND session_id = :session AND answer ? 'evidence'
    """
)


def _audit(
    db: Session,
    organization_id: uuid.UUID,
    session: store.SessionRow,
    test: store.TestDefinition,
    items: store.BankItems,
    result: AssessmentResult,
    document: dict[str, Any],
    *,
    job_id: uuid.UUID | None,
) -> None:
    """One insert-only audit entry: ids and hashes, never the score itself.

    The result's SHA-256 lets an auditor check the stored result is the one decided, while
    the log (which outlives erasure) holds no assessment data about the person.
    """
    embedding_models = sorted(
        row.model
        for row in db.execute(_EMBEDDING_MODELS, {"org": organization_id, "session": session.id})
        if row.model
    )
    input_refs = {
        "assessment_id": str(test.assessment_id),
        "bank_id": str(items.bank_id),
        "config_sha256": test.config_sha256,
        "norm_group_id": document["norm_group_id"],
        "embedding_models": embedding_models,
    }
    output_refs = {
        "assessment_session_id": str(session.id),
        "result_sha256": json_sha256(document),
        "items_answered": result.items_answered,
        "stop_reason": result.stop_reason.value if result.stop_reason else None,
        "estimate_method": result.estimate_method.value,
    }
    audit.record(
        db,
        organization_id=organization_id,
        action=AUDIT_ACTION,
        entity_type="assessment_session",
        entity_id=session.id,
        subject_id=session.candidate_id,
        model_name=SCORER_NAME,
        model_version=__version__,
        input_refs=input_refs,
        output_refs=output_refs,
    )


def _audit_response(
    db: Session,
    organization_id: uuid.UUID,
    session: store.SessionRow,
    test: store.TestDefinition,
    items: store.BankItems,
    code: str,
    response: Any,
    scored: ScoredAnswer,
    state: SessionState,
    *,
    job_id: uuid.UUID | None,
) -> None:
    """One audit row per scored answer: which item (and its IRT model) moved the estimate
    and, for an open answer, which rubric and embedder chose its category.

    The answer is referenced by its id, the outcome by a hash: an answer like
    ``{"option": "a"}`` hashed alone could be looked up, and the log outlives erasure.
    """
    spec = items.bank.specs[items.bank.index_of[code]]
    input_refs: dict[str, Any] = {
        "assessment_session_id": str(session.id),
        "response_id": str(response.id),
        "item_id": str(response.item_id),
        "item_model": spec.model.value,
        "assessment_id": str(test.assessment_id),
        "bank_id": str(items.bank_id),
        "config_sha256": test.config_sha256,
    }
    action, model_name = RESPONSE_AUDIT_ACTION, SCORER_NAME
    if scored.evidence is not None:
        embedder = scored.evidence.get("model") or "unnamed-embedder"
        action, model_name = FREE_TEXT_AUDIT_ACTION, f"{SCORER_NAME}+{FREE_TEXT_METHOD}+{embedder}"
        input_refs["rubric_sha256"] = json_sha256((items.content.get(code) or {}).get("scoring"))
    outcome = {"category": scored.category, "theta": state.theta, "se": state.se,
               "evidence": scored.evidence}  # fmt: skip
    audit.record(
        db,
        organization_id=organization_id,
        action=action,
        entity_type="assessment_responses",
        entity_id=response.id,
        subject_id=session.candidate_id,
        model_name=model_name,
        model_version=__version__,
        input_refs=input_refs,
        output_refs={
            "response_id": str(response.id),
            "result_sha256": json_sha256(outcome),
            "items_answered": len(state.answered),
            "estimate_method": state.estimate_method.value,
            "finished": state.status is SessionStatus.FINISHED,
        },
    )


def _outcome(
    response: Any,
    session: store.SessionRow,
    adaptive: store.AdaptiveRow | None,
    *,
    replayed: bool,
) -> dict[str, Any]:
    """What scoring this response produced, read back from the rows.

    The same function serves a fresh score and a replay, so both return the same document.
    """
    administered = list(store.administered_ids(adaptive))
    position = administered.index(response.item_id) if response.item_id in administered else None
    following = (
        administered[position + 1]
        if position is not None and position + 1 < len(administered)
        else None
    )
    finished = following is None and session.status == "completed"
    answer = response.answer or {}
    return {
        "response_id": str(response.id),
        "session_id": str(session.id),
        "item_id": str(response.item_id),
        "category": response.category,
        "theta": response.theta_after,
        "se": response.se_after,
        "items_answered": (position + 1) if position is not None else None,
        "next_item_id": str(following) if following else None,
        "finished": finished,
        "result": session.state.get(RESULT_KEY) if finished else None,
        "evidence": answer.get("evidence"),
        "replayed": replayed,
    }


def ledger_summary(outcome: dict[str, Any]) -> dict[str, Any]:
    """The part of an outcome stored on the job's ledger row: ids and progress, no scores.

    ``task_runs`` is kept for operations, not for assessment data.
    """
    keys = ("response_id", "session_id", "next_item_id", "items_answered", "finished", "replayed")
    return {key: outcome[key] for key in keys}


# --- rejections ----------------------------------------------------------------------------------

_RECORD_REJECTION = text(
    """
    UPDATE assessment_sessions
    SET state = jsonb_set(
            state, ARRAY[CAST(:key AS text)],
            COALESCE(state -> CAST(:key AS text), '{}'::jsonb)
                || jsonb_build_object(CAST(:rid AS text), CAST(:entry AS jsonb))),
        status = CASE WHEN CAST(:expire AS boolean) AND status = 'open'
                      THEN 'expired'::session_status ELSE status END,
        updated_at = now()
    WHERE organization_id = :org AND id = :session
    """
)


def record_rejection(
    db: Session,
    organization_id: uuid.UUID | None,
    response_id: uuid.UUID | str | None,
    error: PermanentError,
) -> bool:
    """Note on the session why an answer was rejected; an expired session becomes ``expired``.

    Runs after the scoring transaction rolled back, in the transaction that marks the job
    failed (the actor's ``on_permanent_failure``), so the rejection is recorded even though
    nothing else of the attempt was. The response row itself stays unscored. Never raises:
    the job's failure must be recorded whatever happens here. Returns whether it wrote.
    """
    job_id = current_job_id()
    if organization_id is None or response_id is None:
        return False
    try:
        rid = _as_uuid(response_id, "Answer")
        with db.begin_nested():
            row = db.execute(_RESPONSE, {"org": organization_id, "id": rid}).one_or_none()
            if row is None:
                return False
            entry = {
                "code": error.code,
                "message": error.user_message,
                "item_id": str(row.item_id),
                "job_id": str(job_id) if job_id else None,
                "at": datetime.now(UTC).isoformat(),
            }
            db.execute(
                _RECORD_REJECTION,
                {
                    "org": organization_id,
                    "session": row.session_id,
                    "key": REJECTIONS_KEY,
                    "rid": str(rid),
                    "entry": json.dumps(entry),
                    "expire": error.code == "session_expired",
                },
            )
        return True
    except Exception:
        log.warning("assessment_rejection_not_recorded", exc_info=True)
        return False
