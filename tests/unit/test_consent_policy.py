"""The one consent policy, per activity (``services/consent.py``)."""

from __future__ import annotations

import pytest

from are_workers.errors import ConsentError
from are_workers.models.candidates import ConsentPurpose as P
from are_workers.models.candidates import ConsentStatus as S
from are_workers.services.consent import Activity, ensure_allowed, refusal

GRANTED_ALL = {
    P.AI_EVALUATION: S.GRANTED,
    P.BIOMETRIC_PROCESSING: S.GRANTED,
    P.VIDEO_ANALYSIS: S.GRANTED,
}


def _code(consents: dict[P, S], activity: Activity, *, video: bool = False) -> str | None:
    found = refusal(consents, activity, video=video)
    return found.code if found else None


@pytest.mark.parametrize("stop", [S.OBJECTED, S.WITHDRAWN])
@pytest.mark.parametrize("activity", list(Activity))
def test_an_objection_to_automated_processing_stops_every_activity(
    activity: Activity, stop: S
) -> None:
    consents = GRANTED_ALL | {P.AUTOMATED_PROCESSING: stop}
    assert _code(consents, activity) == "automated_processing_objected"


def test_an_art22_objection_stops_judgments_but_not_extraction() -> None:
    consents = GRANTED_ALL | {P.AUTOMATED_DECISION: S.OBJECTED}
    assert _code(consents, Activity.EXTRACTION) is None
    assert _code(consents, Activity.JUDGMENT) == "art22_objection"
    assert _code(consents, Activity.RANKING) == "art22_objection"
    assert _code(consents, Activity.BIOMETRIC) == "art22_objection"
    ensure_allowed(consents, Activity.EXTRACTION, what="the resume")
    with pytest.raises(ConsentError) as caught:
        ensure_allowed(consents, Activity.JUDGMENT, what="the answer")
    assert "the answer was not processed" in caught.value.user_message


def test_ranking_needs_a_granted_ai_evaluation_consent() -> None:
    assert _code({}, Activity.RANKING) == "no_consent"
    assert _code({P.AI_EVALUATION: S.WITHDRAWN}, Activity.RANKING) == "no_consent"
    assert _code({P.AI_EVALUATION: S.GRANTED}, Activity.RANKING) is None
    assert _code({}, Activity.JUDGMENT) is None  # interview signals: no ranking


def test_biometric_processing_needs_explicit_consents() -> None:
    assert _code({}, Activity.BIOMETRIC) == "no_biometric_consent"
    photo = {P.BIOMETRIC_PROCESSING: S.GRANTED}
    assert _code(photo, Activity.BIOMETRIC) is None
    assert _code(photo, Activity.BIOMETRIC, video=True) == "no_video_analysis_consent"
    assert _code(GRANTED_ALL, Activity.BIOMETRIC, video=True) is None
