"""Periodic re-estimation of a bank's item parameters from the answers it has collected, with
drift and over-exposure flags.

The policy, in order:

1. **Data.** Scored answers of the window (default: a year) to the bank's items
   that are ``active`` (answers the engine accepted) or ``pilot`` (answers the ATS scored),
   gathered by one query into an examinee x item matrix (NaN = not administered). A bank
   with fewer than ``min_sessions`` examinees is not calibrated; an item with fewer than
   ``calibration.min_responses`` answers, or with no variance (all right or all wrong,
   where ML estimates diverge), is skipped and listed on the run.
2. **Scale.** MML/EM (``calibration.calibrate``) first with a N(0, 1) population, linked to
   the stored scale by mean/sigma over the active items, to *screen* for drift. The active
   items that pass the screen then serve as anchors (held at their stored values) in a
   second calibration, so the remaining estimates land on the bank's operational scale and
   a change in the applicant population is not mistaken for drift of every item. With
   fewer than ``min_anchors`` anchors the linked first pass is used.
3. **Drift.** An active item is flagged when its estimate moved beyond the thresholds *and*
   the move is at least ``drift_min_z`` standard errors of the new estimate. Why both: with
   a few hundred answers an item far from the population's ability is estimated to within
   about ±0.5 logits, so an absolute tolerance alone flags sampling noise, while a
   significance test alone flags trivial moves on huge samples. The standard errors are
   cross-product (marginal score) estimates; stored parameters are taken as exact. A
   flagged item gets one ``item_drift_flags`` row per parameter (``statistic`` = the change
   in standard errors) and the status ``flagged``, which the schema defines as "excluded
   until reviewed": new sessions stop selecting it, sessions that already saw it still
   count it. Its live parameters are **not** changed; the new values wait on the flag for
   a reviewer.
4. **Updates.** Only ``pilot`` items get parameters written (they are never scored, so no
   live score depends on them), and only when the estimate is not at a bound; promoting a
   pilot item to ``active`` stays a human decision.
5. **Exposure.** ``assessment_items.exposure_rate`` is refreshed from ``item_exposure``;
   items above the bank's exposure cap (the tightest ``max_exposure_rate`` of its
   assessments, else ``max_exposure_rate`` here) over at least ``min_exposure_sessions``
   sessions are listed on the run with a suggested Sympson-Hetter ``k`` (not applied).

**Graded items** (GRM) go through the same steps on their own category matrix
(``graded.calibrate_graded``, MML/EM) and land under ``summary["graded"]``: the GRM cannot
hold anchors yet, so the scale is a mean/sigma link over the active items' thresholds,
redone without the items the first link flagged; a flag is kept when a move beyond the
``b`` (thresholds) or ``a`` tolerance is also ``drift_min_z`` cross-product standard
errors; moved thresholds share one ``item_drift_flags`` row (``parameter = 'thresholds'``,
the threshold that moved most); pilot items get their slope and thresholds.

Every estimate, skip and flag is stored on the ``item_calibration_runs`` row, so a run can be
reviewed without re-running it. Each run is also an automated decision in the audit log
(``assessment.items_calibrated``, same transaction): the method and version, the bank, the
sample by count and the policy by hash, the run by id with the counts of flags and updates.
It names no candidate: the sample is many people's answers, counted, never listed.
"""

from __future__ import annotations

import itertools
import json
import math
import uuid
from typing import Any

import numpy as np
import structlog
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import expit
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers import __version__
from are_workers.crypto import json_sha256
from are_workers.errors import InvalidInputError, NotFoundError
from are_workers.job_context import current_job_id
from are_workers.services.assessments.calibration import (
    CalibrationConfig,
    CalibrationModel,
    CalibrationResult,
    DriftFlag,
    DriftThresholds,
    ExposureFlag,
    ItemEstimate,
    calibrate,
    drift_flags,
    overexposure_flags,
)
from are_workers.services.assessments.graded import calibrate_graded
from are_workers.services.assessments.irt import ItemModel, ItemSpec
from are_workers.services.compliance import audit

log = structlog.get_logger(__name__)

AUDIT_ACTION = "assessment.items_calibrated"
MODEL_NAME_PREFIX = "are-irt-calibration"


class RecalibrationPolicy(BaseModel):
    """The knobs of the periodic calibration (defaults are the production policy)."""

    model_config = ConfigDict(frozen=True)

    calibration: CalibrationConfig = Field(
        default_factory=lambda: CalibrationConfig(min_responses=100, slope_prior_sd=0.5)
    )
    min_sessions: int = Field(default=200, ge=1)
    window_days: int | None = Field(default=365, ge=1)
    drift: DriftThresholds = Field(default_factory=DriftThresholds)
    drift_min_z: float = Field(default=3.5, ge=0)
    min_anchors: int = Field(default=5, ge=1)
    max_exposure_rate: float = Field(default=0.3, gt=0, le=1)
    min_exposure_sessions: int = Field(default=50, ge=1)


_BANKS = text(
    """
    SELECT id, name FROM item_banks
    WHERE organization_id = :org AND (CAST(:bank AS uuid) IS NULL OR id = CAST(:bank AS uuid))
    ORDER BY name
    """
)
_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")


def calibrate_banks(
    db: Session,
    organization_id: uuid.UUID,
    bank_id: uuid.UUID | None = None,
    *,
    policy: RecalibrationPolicy | None = None,
) -> list[dict[str, Any]]:
    """Calibrate one bank, or every bank of the organization; one summary per bank.

    A bank another calibration is working on right now is skipped (``status: busy``).
    """
    job_id = current_job_id()
    rules = policy or RecalibrationPolicy()
    banks = db.execute(_BANKS, {"org": organization_id, "bank": bank_id}).all()
    if bank_id is not None and not banks:
        raise NotFoundError(f"Item bank {bank_id} does not exist in this organization.")
    summaries = []
    for bank in banks:
        if not db.execute(_TRY_LOCK, {"key": f"are.calibrate:{bank.id}"}).scalar_one():
            summaries.append({"bank_id": str(bank.id), "status": "busy"})
            continue
        summaries.append(_calibrate_bank(db, organization_id, bank.id, job_id, rules))
    return summaries


# --- one bank ------------------------------------------------------------------------------------

_ITEMS = text(
    """
    SELECT id, code, model::text AS model, status::text AS status, a, b, c, thresholds,
           content_area, sympson_hetter_k
    FROM assessment_items
    WHERE organization_id = :org AND bank_id = :bank
      AND status IN ('active', 'pilot')
    ORDER BY code
    """
)
_RESPONSES = text(
    """
    SELECT dense_rank() OVER (ORDER BY r.session_id) - 1 AS row,
           array_position(CAST(:ids AS uuid[]), r.item_id) - 1 AS col,
           r.category
    FROM assessment_responses r
    JOIN assessment_items i ON i.organization_id = r.organization_id AND i.id = r.item_id
    WHERE r.organization_id = :org AND i.id = ANY(CAST(:ids AS uuid[]))
      AND r.category IS NOT NULL
      AND (r.theta_after IS NOT NULL OR i.status = 'pilot')
      AND (CAST(:days AS int) IS NULL
           OR r.answered_at >= now() - make_interval(days => CAST(:days AS int)))
    """
)
_INSERT_RUN = text(
    """
    INSERT INTO item_calibration_runs (organization_id, bank_id, status, method, task_run_id)
    VALUES (:org, :bank, 'running', :method, :job)
    RETURNING id
    """
)
_FINISH_RUN = text(
    """
    UPDATE item_calibration_runs
    SET status = CAST(:status AS run_status), sample_size = :n,
        summary = CAST(:summary AS jsonb), finished_at = now()
    WHERE organization_id = :org AND id = :id
    """
)


def _calibrate_bank(
    db: Session,
    organization_id: uuid.UUID,
    bank_id: uuid.UUID,
    job_id: uuid.UUID | None,
    policy: RecalibrationPolicy,
) -> dict[str, Any]:
    items = list(db.execute(_ITEMS, {"org": organization_id, "bank": bank_id}))
    graded = [row for row in items if row.model == ItemModel.GRM.value]
    dichotomous = [row for row in items if row.model != ItemModel.GRM.value]
    model = _bank_model([row.model for row in dichotomous if row.status == "active"])
    config = policy.calibration.model_copy(update={"model": model})
    methods = [f"mml-em-{model.value.lower()}"] if dichotomous or not graded else []
    method = "+".join([*methods, "mml-em-grm"] if graded else methods)
    run_id = db.execute(
        _INSERT_RUN,
        {"org": organization_id, "bank": bank_id, "method": method, "job": job_id},
    ).scalar_one()
    summary: dict[str, Any] = {
        "model": model.value if dichotomous or not graded else CalibrationModel.GRM.value,
        "policy": policy.model_dump(mode="json"),
    }
    exposure = _exposure(db, organization_id, bank_id, policy)
    summary["overexposed"] = exposure
    status, sample_size = "completed", 0
    try:
        matrix, n_sessions = _response_matrix(db, organization_id, dichotomous, policy.window_days)
        graded_matrix, graded_sessions = _response_matrix(
            db, organization_id, graded, policy.window_days
        )
        sample_size = max(n_sessions, graded_sessions)
        if sample_size < policy.min_sessions:
            summary["skipped"] = _too_few(sample_size, policy)
        else:
            if dichotomous and n_sessions >= policy.min_sessions:
                summary |= _estimate_and_flag(
                    db, organization_id, run_id, dichotomous, matrix, config, policy
                )
            elif dichotomous:
                summary["skipped"] = _too_few(n_sessions, policy)
            if graded:
                summary["graded"] = (
                    _estimate_and_flag_graded(
                        db, organization_id, run_id, graded, graded_matrix, policy
                    )
                    if graded_sessions >= policy.min_sessions
                    else {"skipped": _too_few(graded_sessions, policy)}
                )
    except InvalidInputError as exc:
        status = "failed"
        summary["error"] = exc.user_message
    db.execute(
        _FINISH_RUN,
        {
            "org": organization_id,
            "id": run_id,
            "status": status,
            "n": sample_size,
            "summary": json.dumps(summary),
        },
    )
    drift = summary.get("drift", []) + summary.get("graded", {}).get("drift", [])
    pilot_updated = summary.get("pilot_updated", []) + summary.get("graded", {}).get(
        "pilot_updated", []
    )
    audit.record(
        db,
        organization_id=organization_id,
        action=AUDIT_ACTION,
        entity_type="item_calibration_runs",
        entity_id=run_id,
        model_name=f"{MODEL_NAME_PREFIX}+{method}",
        model_version=__version__,
        input_refs={
            "bank_id": str(bank_id),
            "items": len(items),
            "sample_size": sample_size,
            "window_days": policy.window_days,
            "policy_sha256": json_sha256(summary["policy"]),
        },
        output_refs={
            "calibration_run_id": str(run_id),
            "status": status,
            "calibrated": "estimates" in summary or "estimates" in summary.get("graded", {}),
            "drift_flags": len(drift),
            "pilot_updated": len(pilot_updated),
            "overexposed": len(exposure),
            "summary_sha256": json_sha256(summary, default=str),
        },
    )
    log.info(
        "item_calibration_finished",
        bank_id=str(bank_id),
        status=status,
        sample_size=sample_size,
        drift=len(drift),
        overexposed=len(exposure),
    )
    return {
        "bank_id": str(bank_id),
        "run_id": str(run_id),
        "status": status,
        "sample_size": sample_size,
        "drift_flags": len(drift),
        "overexposed": len(exposure),
        "pilot_updated": len(pilot_updated),
    }


def _too_few(n_sessions: int, policy: RecalibrationPolicy) -> str:
    return (
        f"only {n_sessions} examinees answered in the window; "
        f"at least {policy.min_sessions} are needed"
    )


def _bank_model(models: list[str]) -> CalibrationModel:
    """Calibrate with the bank's own model: 3PL if any item guesses, 1PL if all are Rasch."""
    if ItemModel.THREE_PL.value in models:
        return CalibrationModel.THREE_PL
    if models and all(m == ItemModel.ONE_PL.value for m in models):
        return CalibrationModel.ONE_PL
    return CalibrationModel.TWO_PL


def _response_matrix(
    db: Session, organization_id: uuid.UUID, items: list[Any], window_days: int | None
) -> tuple[np.ndarray, int]:
    """Examinees x items, NaN where an item was not administered; built in one query."""
    if not items:
        return np.full((0, 0), np.nan), 0
    ids = [str(row.id) for row in items]
    rows = db.execute(_RESPONSES, {"org": organization_id, "ids": ids, "days": window_days}).all()
    if not rows:
        return np.full((0, len(items)), np.nan), 0
    triples = np.asarray(rows, dtype=np.int64)
    n_sessions = int(triples[:, 0].max()) + 1
    matrix = np.full((n_sessions, len(items)), np.nan)
    matrix[triples[:, 0], triples[:, 1]] = triples[:, 2]
    return matrix, n_sessions


def _estimate_and_flag(
    db: Session,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
    items: list[Any],
    matrix: np.ndarray,
    config: CalibrationConfig,
    policy: RecalibrationPolicy,
) -> dict[str, Any]:
    codes = [row.code for row in items]
    by_code = {row.code: row for row in items}
    stored = {
        row.code: ItemSpec(
            item_id=row.code,
            model=ItemModel(row.model),
            a=row.a,
            b=row.b,
            c=row.c,
            content_area=row.content_area,
        )
        for row in items
        if row.status == "active"
    }
    screen_run = calibrate(matrix, codes, config)
    slope, intercept = _mean_sigma(stored, screen_run.items)
    screened = _linked(screen_run, slope, intercept)
    suspects = {flag.item_id for flag in drift_flags(list(stored.values()), screened, policy.drift)}
    estimated = {item.item_id for item in screen_run.items if not item.at_bound}
    anchors = {
        code: spec for code, spec in stored.items() if code in estimated and code not in suspects
    }
    if len(anchors) >= policy.min_anchors:
        final, scale = calibrate(matrix, codes, config, anchors=anchors), "anchored"
    else:
        final, scale = screened, "mean-sigma"
        anchors = {}
    compared = [spec for code, spec in stored.items() if code not in anchors]
    errors = _standard_errors(final, matrix, codes, config)
    flags, z_scores = _significant(
        drift_flags(compared, final, policy.drift), errors, policy.drift_min_z
    )
    _write_drift(db, organization_id, run_id, flags, by_code, z_scores)
    pilot_updated = _update_pilots(db, organization_id, final, by_code)
    return {
        "scale": scale,
        "linking": {"slope": slope, "intercept": intercept},
        "anchors": sorted(anchors),
        "converged": final.converged,
        "iterations": final.iterations,
        "log_likelihood": final.log_likelihood,
        "latent_mean": final.latent_mean,
        "latent_sd": final.latent_sd,
        "n_examinees": final.n_examinees,
        "estimates": {
            item.item_id: {
                "item_id": str(by_code[item.item_id].id),
                "a": item.a,
                "b": item.b,
                "c": item.c,
                "n_responses": item.n_responses,
                "proportion_correct": item.proportion_correct,
                "at_bound": item.at_bound,
                "anchor": item.item_id in anchors,
                "se": errors.get(item.item_id),
            }
            for item in final.items
        },
        "skipped": [skip.model_dump() for skip in final.skipped],
        "drift": _drift_report(flags, z_scores),
        "pilot_updated": pilot_updated,
    }


def _drift_report(
    flags: list[DriftFlag], z_scores: dict[str, dict[str, float | None]]
) -> list[dict[str, Any]]:
    """The drift flags of a run's summary (dichotomous and graded alike)."""
    return [
        {
            "code": flag.item_id,
            "exceeded": flag.exceeded,
            "stored": flag.stored,
            "estimated": flag.estimated,
            "z": z_scores[flag.item_id],
        }
        for flag in flags
    ]


def _mean_sigma(stored: dict[str, ItemSpec], estimates: list[ItemEstimate]) -> tuple[float, float]:
    """Linking constants ``b_stored ~ slope * b_new + intercept`` over common active items."""
    pairs = [
        (float(stored[e.item_id].b or 0.0), e.b)
        for e in estimates
        if e.item_id in stored and not e.at_bound
    ]
    if len(pairs) < 2:
        return 1.0, 0.0
    old, new = np.asarray(pairs).T
    spread = float(new.std())
    slope = float(old.std()) / spread if spread > 1e-9 else 1.0
    if not math.isfinite(slope) or slope <= 0:
        slope = 1.0
    return slope, float(old.mean() - slope * new.mean())


def _linked(result: CalibrationResult, slope: float, intercept: float) -> CalibrationResult:
    linked = [
        item.model_copy(
            update={
                "a": item.a / slope,
                "b": slope * item.b + intercept,
                "thresholds": None
                if item.thresholds is None
                else [slope * t + intercept for t in item.thresholds],
            }
        )
        for item in result.items
    ]
    return result.model_copy(update={"items": linked})


def _standard_errors(
    result: CalibrationResult, matrix: np.ndarray, codes: list[str], config: CalibrationConfig
) -> dict[str, dict[str, float | None]]:
    """Standard errors of each estimated ``a`` and ``b`` from the cross-product information.

    Why cross-products of *marginal* scores: an examinee's ability is itself uncertain, and
    the information about an item's parameters that the answers actually carry is smaller
    than if abilities were known; summing the outer products of each examinee's score (the
    posterior-weighted derivative of the log-likelihood, as in the E-step) accounts for
    that. Parameters are ``(a, d)`` with ``logit = a theta + d``; ``b = -d / a`` by the
    delta method; the 1PL's slope is fixed, so only ``b`` has an error there.
    """
    if not result.items:
        return {}
    columns = [codes.index(item.item_id) for item in result.items]
    data = matrix[:, columns]
    observed = ~np.isnan(data)
    correct = np.where(observed, data, 0.0)
    wrong = observed - correct
    nodes = np.linspace(config.theta_min, config.theta_max, config.quadrature_points)
    a = np.array([item.a for item in result.items])[:, None]
    b = np.array([item.b for item in result.items])[:, None]
    c = np.array([item.c for item in result.items])[:, None]
    star = expit(a * (nodes - b))
    p = np.clip(c + (1 - c) * star, 1e-12, 1 - 1e-12)
    log_prior = -0.5 * ((nodes - result.latent_mean) / result.latent_sd) ** 2
    loglik = correct @ np.log(p) + wrong @ np.log1p(-p) + log_prior
    posterior = np.exp(loglik - loglik.max(axis=1, keepdims=True))
    posterior /= posterior.sum(axis=1, keepdims=True)
    slope = (1 - c) * star * (1 - star)  # dp / d logit
    if_right, if_wrong = slope / p, -slope / (1 - p)  # d log P(answer) / d logit
    score_d = correct * (posterior @ if_right.T) + wrong * (posterior @ if_wrong.T)
    score_a = correct * (posterior @ (if_right * nodes).T) + wrong * (
        posterior @ (if_wrong * nodes).T
    )
    i_aa = (score_a**2).sum(axis=0)
    i_ad = (score_a * score_d).sum(axis=0)
    i_dd = (score_d**2).sum(axis=0)
    a, b = a[:, 0], b[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        if result.model is CalibrationModel.ONE_PL:
            var_a = np.zeros_like(a)
            var_b = 1.0 / (i_dd * a**2)
        else:
            det = i_aa * i_dd - i_ad**2
            var_a, var_d, cov_ad = i_dd / det, i_aa / det, -i_ad / det
            var_b = (b / a) ** 2 * var_a + var_d / a**2 + 2 * b / a**2 * cov_ad
    se_a = np.sqrt(np.where(var_a >= 0, var_a, np.inf))
    se_b = np.sqrt(np.where(var_b > 0, var_b, np.inf))
    return {
        item.item_id: {"a": _finite_or_none(se_a[j]), "b": _finite_or_none(se_b[j])}
        for j, item in enumerate(result.items)
    }


def _finite_or_none(value: float) -> float | None:
    """JSONB has no infinity: an error that cannot be computed is stored as null."""
    return float(value) if math.isfinite(value) else None


def _significant(
    flags: list[DriftFlag], errors: dict[str, dict[str, float | None]], min_z: float
) -> tuple[list[DriftFlag], dict[str, dict[str, float | None]]]:
    """The flags whose moves are also ``min_z`` standard errors.

    A parameter without a standard error (``c``, or a singular information matrix) keeps
    its absolute flag: a person reviews it rather than nobody.
    """
    kept: list[DriftFlag] = []
    z_scores: dict[str, dict[str, float | None]] = {}
    for flag in flags:
        z: dict[str, float | None] = {}
        for name in flag.exceeded:
            se = errors.get(flag.item_id, {}).get(name)
            change = abs(flag.estimated[name] - flag.stored[name])
            z[name] = change / se if se else None
        exceeded = [name for name in flag.exceeded if (score := z[name]) is None or score >= min_z]
        if exceeded:
            kept.append(flag.model_copy(update={"exceeded": exceeded}))
            z_scores[flag.item_id] = {name: z[name] for name in exceeded}
    return kept, z_scores


_INSERT_FLAGS = text(
    """
    INSERT INTO item_drift_flags (organization_id, calibration_run_id, item_id, parameter,
                                  previous_value, new_value, statistic)
    SELECT :org, :run, v.item_id, v.parameter, v.previous, v.new, v.statistic
    FROM unnest(CAST(:items AS uuid[]), CAST(:parameters AS text[]),
                CAST(:previous AS float8[]), CAST(:new AS float8[]),
                CAST(:statistics AS float8[])) AS v(item_id, parameter, previous, new, statistic)
    """
)
_FLAG_ITEMS = text(
    """
    UPDATE assessment_items SET status = 'flagged', updated_at = now()
    WHERE organization_id = :org AND id = ANY(CAST(:ids AS uuid[])) AND status = 'active'
    """
)


def _write_drift(
    db: Session,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
    flags: list[DriftFlag],
    by_code: dict[str, Any],
    z_scores: dict[str, dict[str, float | None]],
) -> None:
    # One row per item and column parameter: a graded item's moved thresholds (b1, b2, ...)
    # share the row "thresholds", which shows the one that moved most.
    chosen: dict[tuple[str, str], tuple[str, str, float, float, float | None]] = {}
    for flag in flags:
        for name in flag.exceeded:
            parameter = name if name in {"a", "b", "c"} else "thresholds"
            if name not in flag.stored:  # a changed number of categories has no value
                continue
            row = (
                str(by_code[flag.item_id].id),
                parameter,
                flag.stored[name],
                flag.estimated[name],
                z_scores[flag.item_id][name],
            )
            key = (row[0], parameter)
            if key not in chosen or abs(row[3] - row[2]) > abs(chosen[key][3] - chosen[key][2]):
                chosen[key] = row
    rows = list(chosen.values())
    if not rows:
        return
    items, parameters, previous, new, statistics = (
        list(column) for column in zip(*rows, strict=True)
    )
    db.execute(
        _INSERT_FLAGS,
        {
            "org": organization_id,
            "run": run_id,
            "items": items,
            "parameters": parameters,
            "previous": previous,
            "new": new,
            "statistics": statistics,
        },
    )
    db.execute(_FLAG_ITEMS, {"org": organization_id, "ids": sorted(set(items))})


_UPDATE_PILOTS = text(
    """
    UPDATE assessment_items AS i
    SET a = CASE WHEN i.model = '1PL' THEN i.a ELSE v.a END,
        b = v.b,
        c = CASE WHEN i.model = '3PL' THEN v.c ELSE 0 END,
        calibrated_at = now(), updated_at = now()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:a AS float8[]), CAST(:b AS float8[]),
                CAST(:c AS float8[])) AS v(id, a, b, c)
    WHERE i.organization_id = :org AND i.id = v.id AND i.status = 'pilot'
    """
)


def _update_pilots(
    db: Session, organization_id: uuid.UUID, result: CalibrationResult, by_code: dict[str, Any]
) -> list[str]:
    """Write estimates of pilot items (1PL items keep the bank's common slope)."""
    pilots = [
        item
        for item in result.items
        if by_code[item.item_id].status == "pilot" and not item.at_bound
    ]
    if pilots:
        db.execute(
            _UPDATE_PILOTS,
            {
                "org": organization_id,
                "ids": [str(by_code[item.item_id].id) for item in pilots],
                "a": [item.a for item in pilots],
                "b": [item.b for item in pilots],
                "c": [item.c for item in pilots],
            },
        )
    return sorted(item.item_id for item in pilots)


# --- graded items ---------------------------------------------------------------------------------


def _estimate_and_flag_graded(
    db: Session,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
    items: list[Any],
    matrix: np.ndarray,
    policy: RecalibrationPolicy,
) -> dict[str, Any]:
    """The graded items of a bank: GRM by MML/EM, linked, drift-flagged, pilots updated.

    The same policy as the dichotomous path, with one difference of scale: the GRM
    calibration cannot hold anchors yet, so the estimates are linked by mean/sigma over the
    thresholds of the active items, and then linked again without the items that the first
    link flagged (a drifted item must not drag the scale of the others). Categories come
    from the stored thresholds, so a category nobody chose skips the item instead of
    silently merging it.
    """
    codes = [row.code for row in items]
    by_code = {row.code: row for row in items}
    stored = {
        row.code: ItemSpec(
            item_id=row.code,
            model=ItemModel.GRM,
            a=row.a,
            thresholds=tuple(float(t) for t in row.thresholds),
            content_area=row.content_area,
        )
        for row in items
        if row.status == "active"
    }
    categories = [len(row.thresholds) + 1 for row in items]
    config = policy.calibration.model_copy(update={"model": CalibrationModel.GRM})
    raw = calibrate_graded(matrix, codes, config, n_categories=categories)
    slope, intercept = _graded_mean_sigma(stored, raw.items)
    suspects = {
        flag.item_id
        for flag in drift_flags(list(stored.values()), _linked(raw, slope, intercept), policy.drift)
    }
    if suspects:
        stable = {code: spec for code, spec in stored.items() if code not in suspects}
        slope, intercept = _graded_mean_sigma(stable, raw.items)
    final = _linked(raw, slope, intercept)
    errors = _graded_standard_errors(raw, matrix, codes, config, slope)
    flags, z_scores = _significant(
        drift_flags(list(stored.values()), final, policy.drift), errors, policy.drift_min_z
    )
    _write_drift(db, organization_id, run_id, flags, by_code, z_scores)
    pilot_updated = _update_graded_pilots(db, organization_id, final, by_code)
    return {
        "scale": "mean-sigma",
        "linking": {"slope": slope, "intercept": intercept, "excluded": sorted(suspects)},
        "converged": final.converged,
        "iterations": final.iterations,
        "log_likelihood": final.log_likelihood,
        "n_examinees": final.n_examinees,
        "estimates": {
            item.item_id: {
                "item_id": str(by_code[item.item_id].id),
                "a": item.a,
                "thresholds": item.thresholds,
                "n_responses": item.n_responses,
                "mean_category_share": item.proportion_correct,
                "at_bound": item.at_bound,
                "se": errors.get(item.item_id),
            }
            for item in final.items
        },
        "skipped": [skip.model_dump() for skip in final.skipped],
        "drift": _drift_report(flags, z_scores),
        "pilot_updated": pilot_updated,
    }


def _graded_mean_sigma(
    stored: dict[str, ItemSpec], estimates: list[ItemEstimate]
) -> tuple[float, float]:
    """Mean/sigma linking constants over every threshold of the common items."""
    pairs = [
        (old, new)
        for e in estimates
        if e.item_id in stored and not e.at_bound
        for old, new in zip(stored[e.item_id].thresholds or (), e.thresholds or (), strict=True)
    ]
    if len(pairs) < 2:
        return 1.0, 0.0
    old, new = np.asarray(pairs).T
    spread = float(new.std())
    slope = float(old.std()) / spread if spread > 1e-9 else 1.0
    if not math.isfinite(slope) or slope <= 0:
        slope = 1.0
    return slope, float(old.mean() - slope * new.mean())


def _graded_standard_errors(
    result: CalibrationResult,
    matrix: np.ndarray,
    codes: list[str],
    config: CalibrationConfig,
    slope: float,
) -> dict[str, dict[str, float | None]]:
    """Standard errors of ``a`` and each threshold from the cross-product information.

    The same construction as the dichotomous :func:`_standard_errors`: per examinee, the
    posterior-weighted derivative of the log-probability of the chosen category with
    respect to ``(a, d_1..d_m)`` (``P(X >= k) = logistic(a theta + d_k)``), summed as outer
    products; thresholds ``b_k = -d_k / a`` by the delta method, then put on the linked
    scale (``a / slope``, ``slope * b``).
    """
    if not result.items:
        return {}
    columns = [codes.index(item.item_id) for item in result.items]
    data = matrix[:, columns]
    observed = ~np.isnan(data)
    width = max(len(item.thresholds or ()) for item in result.items) + 1
    one_hot = np.zeros((*data.shape, width))
    rows, cols = np.nonzero(observed)
    one_hot[rows, cols, data[rows, cols].astype(np.int64)] = 1.0
    nodes = np.linspace(config.theta_min, config.theta_max, config.quadrature_points)
    # Per item: P(X = x | node) and d log P / d(a, d_1..d_m), padded to ``width``.
    log_p = np.zeros((len(result.items), nodes.shape[0], width))
    scores = np.zeros((len(result.items), nodes.shape[0], width, width))
    for j, item in enumerate(result.items):
        d = -item.a * np.asarray(item.thresholds or ())
        m = d.shape[0]
        star = np.ones((nodes.shape[0], m + 2))
        star[:, 1 : m + 1] = expit(item.a * nodes[:, None] + d)
        star[:, m + 1] = 0.0
        prob = np.maximum(star[:, :-1] - star[:, 1:], 1e-300)
        w = star * (1 - star)  # dP*/d(logit); 0 at both ends
        log_p[j, :, : m + 1] = np.log(prob)
        log_p[j, :, m + 1 :] = 0.0
        for x in range(m + 1):
            scores[j, :, x, 0] = nodes * (w[:, x] - w[:, x + 1]) / prob[:, x]
            if x >= 1:
                scores[j, :, x, x] = w[:, x] / prob[:, x]
            if x < m:
                scores[j, :, x, x + 1] = -w[:, x + 1] / prob[:, x]
    loglik = np.einsum("eiw,iqw->eq", one_hot, log_p) - 0.5 * nodes**2
    posterior = np.exp(loglik - loglik.max(axis=1, keepdims=True))
    posterior /= posterior.sum(axis=1, keepdims=True)
    marginal = np.einsum("eq,eiw,iqwp->eip", posterior, one_hot, scores)
    errors: dict[str, dict[str, float | None]] = {}
    for j, item in enumerate(result.items):
        m = len(item.thresholds or ())
        info = marginal[:, j, : m + 1].T @ marginal[:, j, : m + 1]
        try:
            cov = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            errors[item.item_id] = dict.fromkeys(["a", *(f"b{k + 1}" for k in range(m))])
            continue
        d = -item.a * np.asarray(item.thresholds or ())
        se_a = math.sqrt(cov[0, 0]) / slope if cov[0, 0] > 0 else math.inf
        entry: dict[str, float | None] = {"a": _finite_or_none(se_a)}
        for k in range(m):
            gradient = np.zeros(m + 1)
            gradient[0], gradient[k + 1] = d[k] / item.a**2, -1.0 / item.a
            variance = float(gradient @ cov @ gradient)
            entry[f"b{k + 1}"] = _finite_or_none(
                slope * math.sqrt(variance) if variance > 0 else math.inf
            )
        errors[item.item_id] = entry
    return errors


_UPDATE_GRADED_PILOTS = text(
    """
    UPDATE assessment_items AS i
    SET a = v.a, thresholds = v.thresholds, calibrated_at = now(), updated_at = now()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:a AS float8[]), CAST(:thresholds AS jsonb[]))
         AS v(id, a, thresholds)
    WHERE i.organization_id = :org AND i.id = v.id AND i.status = 'pilot' AND i.model = 'GRM'
    """
)


def _update_graded_pilots(
    db: Session, organization_id: uuid.UUID, result: CalibrationResult, by_code: dict[str, Any]
) -> list[str]:
    """Write slopes and thresholds of graded pilot items (never of live items)."""
    pilots = [
        item
        for item in result.items
        if by_code[item.item_id].status == "pilot"
        and not item.at_bound
        and all(hi > lo for lo, hi in itertools.pairwise(item.thresholds or ()))
    ]
    if pilots:
        db.execute(
            _UPDATE_GRADED_PILOTS,
            {
                "org": organization_id,
                "ids": [str(by_code[item.item_id].id) for item in pilots],
                "a": [item.a for item in pilots],
                "thresholds": [json.dumps(item.thresholds) for item in pilots],
            },
        )
    return sorted(item.item_id for item in pilots)


# --- exposure -------------------------------------------------------------------------------------

_EXPOSURE_CAP = text(
    """
    SELECT min((config->'selection'->>'max_exposure_rate')::float8) FROM assessments
    WHERE organization_id = :org AND bank_id = :bank
      AND jsonb_typeof(config->'selection'->'max_exposure_rate') = 'number'
    """
)
_REFRESH_RATES = text(
    """
    UPDATE assessment_items AS i
    SET exposure_rate = LEAST(1.0, e.administered_count::float8 / e.sessions_count),
        updated_at = now()
    FROM item_exposure e
    WHERE e.organization_id = i.organization_id AND e.item_id = i.id
      AND i.organization_id = :org AND i.bank_id = :bank AND e.sessions_count > 0
    RETURNING i.code, i.sympson_hetter_k, e.administered_count, e.sessions_count
    """
)


def _exposure(
    db: Session, organization_id: uuid.UUID, bank_id: uuid.UUID, policy: RecalibrationPolicy
) -> list[dict[str, Any]]:
    """Refresh observed exposure rates; list the items above the cap, most exposed first."""
    params = {"org": organization_id, "bank": bank_id}
    cap = db.execute(_EXPOSURE_CAP, params).scalar_one_or_none()
    r_max = float(cap) if cap is not None and 0 < cap <= 1 else policy.max_exposure_rate
    rows = [
        row
        for row in db.execute(_REFRESH_RATES, params)
        if row.sessions_count >= policy.min_exposure_sessions
    ]
    k_of = {row.code: row.sympson_hetter_k for row in rows}
    flags: list[ExposureFlag] = []
    rows.sort(key=lambda row: row.sessions_count)
    for sessions, group in itertools.groupby(rows, key=lambda row: row.sessions_count):
        counts = {row.code: int(row.administered_count) for row in group}
        flags.extend(overexposure_flags(counts, int(sessions), r_max))
    flags.sort(key=lambda flag: (-flag.rate, flag.item_id))
    return [
        flag.model_dump()
        | {"suggested_sympson_hetter_k": min(1.0, k_of[flag.item_id] * r_max / flag.rate)}
        for flag in flags
    ]
