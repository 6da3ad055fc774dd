"""One consent policy for every worker, decided per activity.

Why one module: each domain used to carry its own copy, and the copies disagreed (matching
ignored an objection to automated processing; resumes and media read an Art. 22 objection
differently). The rules, chosen per activity:

* **Every activity** stops when the candidate objected to, or withdrew consent for,
  ``automated_processing`` (GDPR Art. 21): no parsing, embedding, transcription, scoring or
  face analysis runs for them at all.
* **Extraction** (parsing and embedding a resume, transcribing an answer) needs nothing
  more. It makes no decision: its output is the text a person reads, which is what an Art.
  22 objector's human review works from, so an ``automated_decision`` objection alone does
  not stop it.
* **Judgment** (ranking a resume against a job, deep-evaluating a portfolio, speech and
  relevance signals of an interview answer) also stops on an ``automated_decision``
  objection (Art. 22). The AI evaluations that rank (matching, portfolios) further need a
  ``granted`` ``ai_evaluation`` consent; without one they are skipped with a reason, not
  failed.
* **Biometric** processing (face detection on video answers and proctoring snapshots, GDPR
  Art. 9) stops on either objection and needs an explicit ``biometric_processing`` consent,
  plus ``video_analysis`` for video.

Refusals are reason codes with a sentence for people. Objections raise ``ConsentError``
where the job cannot do anything useful (:func:`ensure_allowed`); missing grants are
outcomes the caller records (:func:`refusal`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from are_workers.errors import ConsentError
from are_workers.models.candidates import CandidateConsent, ConsentPurpose, ConsentStatus


class Activity(StrEnum):
    EXTRACTION = "extraction"
    JUDGMENT = "judgment"
    RANKING = "ranking"  # a judgment that ranks candidates: needs ai_evaluation granted
    BIOMETRIC = "biometric"


Consents = dict[ConsentPurpose, ConsentStatus]

STOPPED = frozenset({ConsentStatus.OBJECTED, ConsentStatus.WITHDRAWN})


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str


OBJECTED_PROCESSING = "automated_processing_objected"
OBJECTED_DECISION = "art22_objection"
NO_AI_CONSENT = "no_consent"
NO_BIOMETRIC_CONSENT = "no_biometric_consent"
NO_VIDEO_CONSENT = "no_video_analysis_consent"

#: What a recruiter reads for each reason code.
REASONS = {
    OBJECTED_PROCESSING: "The candidate objected to (or withdrew consent for) automated "
    "processing; review this candidate manually.",
    OBJECTED_DECISION: "The candidate objected to automated decision-making (GDPR Art. 22); "
    "review this candidate manually.",
    NO_AI_CONSENT: "The candidate has not consented to AI evaluation; review manually.",
    NO_BIOMETRIC_CONSENT: "The candidate has not given explicit consent to biometric "
    "processing (face analysis), so no face analysis was done.",
    NO_VIDEO_CONSENT: "The candidate has not consented to the analysis of their video, so no "
    "face analysis was done.",
}


def load_consents(session: Session, candidate_id: uuid.UUID) -> Consents:
    rows = session.execute(
        select(CandidateConsent.purpose, CandidateConsent.status).where(
            CandidateConsent.candidate_id == candidate_id
        )
    )
    return {row.purpose: row.status for row in rows}


def refusal(consents: Consents, activity: Activity, *, video: bool = False) -> Refusal | None:
    """Why ``activity`` may not run for this candidate, or ``None`` when it may."""
    code: str | None = None
    if consents.get(ConsentPurpose.AUTOMATED_PROCESSING) in STOPPED:
        code = OBJECTED_PROCESSING
    elif activity is not Activity.EXTRACTION and (
        consents.get(ConsentPurpose.AUTOMATED_DECISION) in STOPPED
    ):
        code = OBJECTED_DECISION
    elif activity is Activity.RANKING:
        if consents.get(ConsentPurpose.AI_EVALUATION) is not ConsentStatus.GRANTED:
            code = NO_AI_CONSENT
    elif activity is Activity.BIOMETRIC:
        if consents.get(ConsentPurpose.BIOMETRIC_PROCESSING) is not ConsentStatus.GRANTED:
            code = NO_BIOMETRIC_CONSENT
        elif video and consents.get(ConsentPurpose.VIDEO_ANALYSIS) is not ConsentStatus.GRANTED:
            code = NO_VIDEO_CONSENT
    return Refusal(code, REASONS[code]) if code is not None else None


def is_objection(found: Refusal | None) -> bool:
    return found is not None and found.code in {OBJECTED_PROCESSING, OBJECTED_DECISION}


def ensure_allowed(consents: Consents, activity: Activity, *, what: str) -> None:
    """Raise ``ConsentError`` when the candidate objected to what ``activity`` does.

    ``what`` completes "so … was not processed" for the person who reads the error.
    """
    found = refusal(consents, activity)
    if is_objection(found):
        raise ConsentError(
            f"The candidate objected to (or withdrew consent for) automated processing, so "
            f"{what} was not processed. A person can review it instead.",
            code=OBJECTED_PROCESSING,
        )


def candidate_refusal(
    session: Session, candidate_id: uuid.UUID, activity: Activity
) -> Refusal | None:
    """:func:`refusal` for a candidate, reading their consents."""
    return refusal(load_consents(session, candidate_id), activity)
