"""The database side of adaptive testing: banks, test definitions, session state, exposure
counters and norm tables, read from and written to the shared schema.

Why one module: the engine (``engine.py``) is pure, so this is the single place that knows
how its inputs and outputs map to tables. The rules it keeps:

* Every statement filters ``organization_id``: an id from another tenant is "not found".
* Engine item ids are item *codes* (unique per bank), so the engine's messages name a
  question the way recruiters and candidates see it; rows are joined back by UUID.
* The engine state lives in ``adaptive_sessions.engine_state`` in the schema's
  :class:`AdaptiveState` shape (items administered, categories answered, theta, SE, seed).
  The rest of the engine's :class:`SessionState` is rebuilt from the session row and the
  scored responses: an item was presented when the previous answer was scored (the first at
  the session's start), which is exactly how :func:`engine.step` stamps it.
* The session row's ``expires_at`` is the test's deadline: the engine's time limit is set
  from it, so the engine and the ATS cannot disagree about when time runs out.
* Exposure counters are incremented with single set-based upserts, in the transaction that
  administers the item, so a rolled-back step never counts.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers.crypto import json_sha256
from are_workers.errors import InvalidInputError, NotFoundError, TransientError
from are_workers.models.schemas import AdaptiveState, validated
from are_workers.services.assessments.engine import (
    AdministeredItem,
    CatConfig,
    SessionState,
    SessionStatus,
)
from are_workers.services.assessments.irt import ItemBank, ItemModel, ItemSpec
from are_workers.services.assessments.norms import NormTable
from are_workers.services.assessments.selection import ExposureSnapshot

#: Session rows in these states accept no answers (the engine's FINISHED).
CLOSED_STATUSES = frozenset({"completed", "expired", "abandoned"})


# --- item banks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BankItems:
    """A validated engine bank plus the mapping between engine ids (codes) and rows."""

    bank_id: uuid.UUID
    name: str
    bank: ItemBank
    ids: dict[str, uuid.UUID]  # code -> assessment_items.id
    codes: dict[uuid.UUID, str]  # assessment_items.id -> code
    content: dict[str, dict[str, Any]]  # code -> content (stem, options, scoring key)

    def area_of(self, code: str) -> str:
        return self.bank.area_names[self.bank.area_codes[self.bank.index_of[code]]]


_BANK = text("SELECT id, name FROM item_banks WHERE organization_id = :org AND id = :bank")
_BANK_ITEMS = text(
    """
    SELECT id, code, model::text AS model, a, b, c, thresholds, content_area,
           sympson_hetter_k, content
    FROM assessment_items
    WHERE organization_id = :org AND bank_id = :bank
      AND (status = 'active' OR id = ANY(CAST(:extra AS uuid[])))
    ORDER BY code
    """
)


def load_bank(
    db: Session,
    organization_id: uuid.UUID,
    bank_id: uuid.UUID,
    *,
    also_item_ids: Iterable[uuid.UUID] = (),
) -> BankItems:
    """The bank's active items, plus ``also_item_ids`` whatever their status.

    Why the extra ids: an item flagged or retired after a candidate saw it must still count
    in that candidate's estimate; it just is not selected again.
    """
    bank_row = db.execute(_BANK, {"org": organization_id, "bank": bank_id}).one_or_none()
    if bank_row is None:
        raise NotFoundError(f"Item bank {bank_id} does not exist in this organization.")
    rows = db.execute(
        _BANK_ITEMS,
        {"org": organization_id, "bank": bank_id, "extra": [str(i) for i in also_item_ids]},
    ).all()
    specs = [
        ItemSpec(
            item_id=row.code,
            model=ItemModel(row.model),
            a=row.a,
            b=row.b,
            c=row.c,
            thresholds=tuple(row.thresholds) if row.thresholds is not None else None,
            content_area=row.content_area,
            exposure_k=row.sympson_hetter_k,
        )
        for row in rows
    ]
    try:
        bank = ItemBank(specs)
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"Item bank '{bank_row.name}': {exc.user_message}", code=exc.code
        ) from None
    return BankItems(
        bank_id=bank_id,
        name=bank_row.name,
        bank=bank,
        ids={row.code: row.id for row in rows},
        codes={row.id: row.code for row in rows},
        content={row.code: row.content or {} for row in rows},
    )


def item_code(db: Session, organization_id: uuid.UUID, item_id: uuid.UUID) -> str:
    """An item's code for a message (its id if it has vanished)."""
    code = db.execute(
        text("SELECT code FROM assessment_items WHERE organization_id = :org AND id = :id"),
        {"org": organization_id, "id": item_id},
    ).scalar_one_or_none()
    return str(code) if code is not None else str(item_id)


# --- test definitions --------------------------------------------------------------------------


@dataclass(frozen=True)
class TestDefinition:
    """An adaptive assessment: its bank and engine configuration."""

    assessment_id: uuid.UUID
    bank_id: uuid.UUID
    config: CatConfig
    config_sha256: str


_ASSESSMENT = text(
    """
    SELECT a.id, a.bank_id, a.kind::text AS kind, a.config, b.content_areas
    FROM assessments a
    JOIN item_banks b ON b.organization_id = a.organization_id AND b.id = a.bank_id
    WHERE a.organization_id = :org AND a.id = :id
    """
)


def load_test(db: Session, organization_id: uuid.UUID, assessment_id: uuid.UUID) -> TestDefinition:
    """The assessment's ``config`` as a :class:`CatConfig`.

    Content balancing falls back to the bank's ``content_areas`` target shares when the
    assessment sets none. Unknown top-level keys in ``config`` are the ATS's and ignored.
    """
    row = db.execute(_ASSESSMENT, {"org": organization_id, "id": assessment_id}).one_or_none()
    if row is None:
        raise NotFoundError(f"Assessment {assessment_id} does not exist in this organization.")
    if row.kind != "adaptive":
        raise InvalidInputError(
            "This assessment is a fixed form; only adaptive assessments are scored here.",
            code="not_adaptive",
        )
    raw: dict[str, Any] = dict(row.config or {})
    try:
        config = CatConfig.model_validate(raw)
        targets = row.content_areas or {}
        if config.selection.content_targets is None and targets:
            selection = config.selection.model_validate(
                {**config.selection.model_dump(), "content_targets": targets}
            )
            config = config.model_copy(update={"selection": selection})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidInputError(
            f"The assessment's configuration is invalid: {problems}.",
            code="invalid_test_definition",
        ) from None
    digest = json_sha256(config.model_dump(mode="json"))
    return TestDefinition(
        assessment_id=row.id, bank_id=row.bank_id, config=config, config_sha256=digest
    )


def with_deadline(config: CatConfig, started_at: datetime, expires_at: datetime) -> CatConfig:
    """The engine configuration with the session row's deadline as its time limit."""
    limit = (expires_at - started_at).total_seconds()
    stopping = config.stopping.model_copy(update={"time_limit_seconds": limit})
    return config.model_copy(update={"stopping": stopping})


# --- norms ---------------------------------------------------------------------------------------


_NORM_GROUP = text(
    """
    SELECT id, name, thetas FROM norm_groups
    WHERE organization_id = :org AND assessment_id = :assessment
      AND (CAST(:id AS uuid) IS NULL OR id = CAST(:id AS uuid))
    ORDER BY computed_at DESC
    LIMIT 2
    """
)


def load_norms(
    db: Session,
    organization_id: uuid.UUID,
    assessment_id: uuid.UUID,
    norm_group_id: uuid.UUID | None,
) -> tuple[uuid.UUID | None, NormTable | None]:
    """The session's norm group, or the assessment's only one; ``(None, None)`` otherwise.

    Why not "the latest" when there are several: a percentile against the wrong population
    is worse than none, so an ambiguous choice is left to the ATS (``norm_group_id``).
    """
    rows = db.execute(
        _NORM_GROUP,
        {"org": organization_id, "assessment": assessment_id, "id": norm_group_id},
    ).all()
    if not rows or (norm_group_id is None and len(rows) > 1):
        return None, None
    row = rows[0]
    try:
        return row.id, NormTable(name=row.name, thetas=tuple(row.thetas))
    except ValidationError as exc:
        raise InvalidInputError(
            f"Norm group '{row.name}' cannot be used: {exc.errors()[0]['msg']}.",
            code="invalid_norm_group",
        ) from None


# --- exposure ------------------------------------------------------------------------------------

_COUNT_SESSION_START = text(
    """
    INSERT INTO item_exposure (organization_id, item_id, sessions_count)
    SELECT organization_id, id, 1 FROM assessment_items
    WHERE organization_id = :org AND bank_id = :bank AND status = 'active'
    ORDER BY id
    ON CONFLICT (item_id) DO UPDATE
    SET sessions_count = item_exposure.sessions_count + 1, updated_at = now()
    """
)
_COUNT_ADMINISTRATION = text(
    """
    INSERT INTO item_exposure (organization_id, item_id, selected_count, administered_count)
    VALUES (:org, :item, 1, 1)
    ON CONFLICT (item_id) DO UPDATE
    SET selected_count = item_exposure.selected_count + 1,
        administered_count = item_exposure.administered_count + 1,
        updated_at = now()
    """
)
_EXPOSURE = text(
    """
    SELECT item_id, administered_count, sessions_count FROM item_exposure
    WHERE organization_id = :org AND item_id = ANY(CAST(:ids AS uuid[]))
    """
)


def count_session_start(db: Session, organization_id: uuid.UUID, bank_id: uuid.UUID) -> None:
    """One more session in the window of every active item of the bank (one statement).

    Rows are visited in id order so that concurrent session starts lock them in the same
    order and cannot deadlock.
    """
    db.execute(_COUNT_SESSION_START, {"org": organization_id, "bank": bank_id})


def count_administration(db: Session, organization_id: uuid.UUID, item_id: uuid.UUID) -> None:
    """The item was selected and shown (the engine applies Sympson-Hetter before choosing)."""
    db.execute(_COUNT_ADMINISTRATION, {"org": organization_id, "item": item_id})


def exposure_snapshot(
    db: Session, organization_id: uuid.UUID, items: BankItems
) -> ExposureSnapshot:
    """Running exposure for the exposure cap.

    ``sessions`` is the largest window among the bank's items. An item added later has seen
    fewer sessions, so its count is scaled up to that window: the rate the cap compares is
    then the item's own rate, not an underestimate.
    """
    rows = db.execute(
        _EXPOSURE, {"org": organization_id, "ids": [str(i) for i in items.ids.values()]}
    ).all()
    sessions = max([1, *(int(row.sessions_count) for row in rows)])
    administrations: dict[str, int] = {}
    for row in rows:
        count = int(row.administered_count)
        if row.sessions_count and row.sessions_count < sessions:
            count = math.ceil(count * sessions / row.sessions_count)
        administrations[items.codes[row.item_id]] = count
    return ExposureSnapshot(sessions=sessions, administrations=administrations)


# --- sessions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRow:
    id: uuid.UUID
    assessment_id: uuid.UUID
    candidate_id: uuid.UUID
    norm_group_id: uuid.UUID | None
    status: str
    state: dict[str, Any]
    started_at: datetime
    expires_at: datetime
    completed_at: datetime | None


_LOCK_SESSION = text(
    """
    SELECT id, assessment_id, candidate_id, norm_group_id, status::text AS status, state,
           started_at, expires_at, completed_at
    FROM assessment_sessions
    WHERE organization_id = :org AND id = :id
    FOR UPDATE
    """
)


def lock_session(db: Session, organization_id: uuid.UUID, session_id: uuid.UUID) -> SessionRow:
    """The session row, locked until commit: answers to one session are scored one by one."""
    row = db.execute(_LOCK_SESSION, {"org": organization_id, "id": session_id}).one_or_none()
    if row is None:
        raise NotFoundError(f"Assessment session {session_id} does not exist in this organization.")
    return SessionRow(**row._mapping)


@dataclass(frozen=True)
class AdaptiveRow:
    id: uuid.UUID
    engine_state: AdaptiveState
    revision: int
    next_item_id: uuid.UUID | None


_LOCK_ADAPTIVE = text(
    """
    SELECT id, engine_state, revision, next_item_id FROM adaptive_sessions
    WHERE organization_id = :org AND assessment_session_id = :session
    FOR UPDATE
    """
)


def lock_adaptive(
    db: Session, organization_id: uuid.UUID, session_id: uuid.UUID
) -> AdaptiveRow | None:
    row = db.execute(_LOCK_ADAPTIVE, {"org": organization_id, "session": session_id}).one_or_none()
    if row is None:
        return None
    try:
        document = AdaptiveState.model_validate(row.engine_state)
    except ValidationError as exc:
        raise InvalidInputError(
            f"The stored state of this adaptive session is corrupt: {exc.errors()[0]['msg']}.",
            code="corrupt_session_state",
        ) from None
    return AdaptiveRow(
        id=row.id, engine_state=document, revision=row.revision, next_item_id=row.next_item_id
    )


_ANSWERED_AT = text(
    """
    SELECT item_id, answered_at FROM assessment_responses
    WHERE organization_id = :org AND session_id = :session AND theta_after IS NOT NULL
    """
)


def answered_times(
    db: Session, organization_id: uuid.UUID, session_id: uuid.UUID
) -> dict[uuid.UUID, datetime]:
    """When each scored answer of the session was given."""
    rows = db.execute(_ANSWERED_AT, {"org": organization_id, "session": session_id})
    return {row.item_id: row.answered_at for row in rows}


def default_seed(session_id: uuid.UUID) -> int:
    """A stable per-session seed: re-running a step picks the same next item."""
    return session_id.int % (2**63)


def rebuild_state(
    session: SessionRow,
    adaptive: AdaptiveRow,
    items: BankItems,
    answered_at: dict[uuid.UUID, datetime],
    config: CatConfig,
) -> SessionState:
    """The engine's :class:`SessionState` from the stored rows (see the module docstring)."""
    document = adaptive.engine_state
    administered: list[AdministeredItem] = []
    presented = session.started_at
    for position, item_id in enumerate(document.administered):
        code = items.codes.get(item_id)
        if code is None:
            raise InvalidInputError(
                "A question presented in this session is no longer in its item bank.",
                code="corrupt_session_state",
            )
        if position < len(document.responses):
            at = answered_at.get(item_id, presented)
            administered.append(
                AdministeredItem(
                    item_id=code,
                    response=document.responses[position],
                    presented_at=presented,
                    answered_at=at,
                )
            )
            presented = at
        else:
            administered.append(AdministeredItem(item_id=code, presented_at=presented))
    finished = session.status in CLOSED_STATUSES
    return SessionState(
        status=SessionStatus.FINISHED if finished else SessionStatus.IN_PROGRESS,
        seed=document.rng_seed if document.rng_seed is not None else default_seed(session.id),
        started_at=session.started_at,
        finished_at=session.completed_at,
        items=tuple(administered),
        theta=document.theta,
        se=document.se if document.se else config.estimator.prior_sd,
        estimate_method=config.estimator.method,
    )


def engine_document(state: SessionState, items: BankItems) -> dict[str, Any]:
    """``adaptive_sessions.engine_state`` for ``state``, validated like the model does."""
    return validated(
        AdaptiveState,
        {
            "administered": [str(items.ids[item.item_id]) for item in state.items],
            "responses": [item.response for item in state.answered],
            "theta": state.theta,
            "se": state.se,
            "content_counts": dict(Counter(items.area_of(item.item_id) for item in state.items)),
            "rng_seed": state.seed,
        },
    )


def pending_item_id(state: SessionState, items: BankItems) -> uuid.UUID | None:
    pending = state.pending_item_id
    return items.ids[pending] if pending is not None else None


_INSERT_ADAPTIVE = text(
    """
    INSERT INTO adaptive_sessions (organization_id, assessment_session_id, selection_method,
                                   exposure_control, engine_state, next_item_id)
    VALUES (:org, :session, :selection, :exposure, CAST(:state AS jsonb), :next)
    """
)


def insert_adaptive(
    db: Session,
    organization_id: uuid.UUID,
    session_id: uuid.UUID,
    state: SessionState,
    items: BankItems,
    config: CatConfig,
) -> None:
    selection = config.selection
    exposure = (
        "exposure_cap"
        if selection.max_exposure_rate is not None
        else "sympson_hetter"
        if selection.sympson_hetter
        else "none"
    )
    db.execute(
        _INSERT_ADAPTIVE,
        {
            "org": organization_id,
            "session": session_id,
            "selection": (
                f"max_information/randomesque-{selection.randomesque_n}"
                if selection.randomesque_n > 1
                else "max_information"
            ),
            "exposure": exposure,
            "state": json.dumps(engine_document(state, items)),
            "next": pending_item_id(state, items),
        },
    )


_SAVE_ADAPTIVE = text(
    """
    UPDATE adaptive_sessions
    SET engine_state = CAST(:state AS jsonb), next_item_id = :next,
        revision = revision + 1, updated_at = now()
    WHERE organization_id = :org AND id = :id AND revision = :seen
    RETURNING revision
    """
)


def save_adaptive(
    db: Session,
    organization_id: uuid.UUID,
    adaptive: AdaptiveRow,
    state: SessionState,
    items: BankItems,
) -> None:
    """Write the new engine state, fenced on the revision this step read.

    The session row lock already serialises steps; the fence also protects against a writer
    that does not take it (the schema documents ``revision`` as the optimistic lock).
    """
    row = db.execute(
        _SAVE_ADAPTIVE,
        {
            "org": organization_id,
            "id": adaptive.id,
            "seen": adaptive.revision,
            "state": json.dumps(engine_document(state, items)),
            "next": pending_item_id(state, items),
        },
    ).first()
    if row is None:
        raise TransientError("The adaptive session changed while this answer was scored.")


def administered_ids(adaptive: AdaptiveRow | None) -> Sequence[uuid.UUID]:
    return adaptive.engine_state.administered if adaptive is not None else ()
