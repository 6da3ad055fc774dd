"""Adaptive testing (IRT/CAT) without a database: models, estimation, selection, the step
function, scoring against norms, and offline calibration.

Layout, one room per concern:

- ``irt``: item models (1PL/2PL/3PL/GRM) and the validated :class:`ItemBank`;
- ``estimation``: EAP, MAP, ML and WLE ability estimates with standard errors;
- ``selection``: maximum information with exposure control and content balancing;
- ``engine``: the session state and :func:`step` (score, estimate, stop, pick next);
- ``norms``: reporting scale and percentile ranks from a stored norm table;
- ``calibration``: MML/EM item calibration, drift and exposure flags, Sympson-Hetter
  exposure parameters.

Actors load a bank and a :class:`SessionState`, call :func:`step`, and store the result.
"""

from are_workers.services.assessments.engine import (
    AdministeredItem,
    Answer,
    AssessmentResult,
    CatConfig,
    SessionState,
    SessionStatus,
    SimulationResult,
    StoppingRule,
    StopReason,
    close_session,
    final_result,
    is_expired,
    simulate,
    simulate_sessions,
    start_session,
    step,
)
from are_workers.services.assessments.estimation import (
    AbilityEstimate,
    EstimationMethod,
    EstimatorConfig,
    estimate,
    estimate_eap,
    estimate_map,
    estimate_ml,
    estimate_wle,
)
from are_workers.services.assessments.irt import ItemBank, ItemModel, ItemSpec
from are_workers.services.assessments.norms import NormTable, ScoreScale, percentile_rank
from are_workers.services.assessments.selection import (
    ExposureSnapshot,
    SelectionConfig,
    select_next_item,
)

__all__ = [
    "AbilityEstimate",
    "AdministeredItem",
    "Answer",
    "AssessmentResult",
    "CatConfig",
    "EstimationMethod",
    "EstimatorConfig",
    "ExposureSnapshot",
    "ItemBank",
    "ItemModel",
    "ItemSpec",
    "NormTable",
    "ScoreScale",
    "SelectionConfig",
    "SessionState",
    "SessionStatus",
    "SimulationResult",
    "StopReason",
    "StoppingRule",
    "close_session",
    "estimate",
    "estimate_eap",
    "estimate_map",
    "estimate_ml",
    "estimate_wle",
    "final_result",
    "is_expired",
    "percentile_rank",
    "select_next_item",
    "simulate",
    "simulate_sessions",
    "start_session",
    "step",
]
