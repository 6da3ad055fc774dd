"""Tenant integrity and ON DELETE behaviour, against the migrated database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from are_workers.models.ai_evaluations import AIEvaluation, EvaluationCriterionScore
from are_workers.models.applications import Application
from are_workers.models.audit import ActorType, AuditLog
from are_workers.models.candidates import Candidate, CandidateNote, ParsedResume
from are_workers.models.embeddings import Embedding, EmbeddingEntity
from are_workers.models.files import File, FilePurpose
from are_workers.models.interviews import (
    Interview,
    InterviewKind,
    InterviewParticipant,
    ParticipantRole,
)
from are_workers.models.jobs import JobPosting
from are_workers.models.organizations import Organization
from are_workers.models.video_interviews import (
    VideoInterview,
    VideoInterviewQuestion,
    VideoResponse,
)
from tests.factories import (
    Graph,
    make_candidate,
    make_embedding_model,
    make_file,
    make_graph,
    make_job,
    make_member,
    make_model_version,
    make_org,
    make_user,
    utcnow,
)
from tests.schema.conftest import Violates


def test_application_cannot_join_two_tenants(db: Session, violates: Violates) -> None:
    org_a, org_b = make_org(db), make_org(db)
    candidate = make_candidate(db, org_a)
    job_b = make_job(db, org_b)
    with violates("fk_applications_organization_id_job_id_job_postings"):
        db.add(Application(organization_id=org_a.id, candidate_id=candidate.id, job_id=job_b.id))
    # Claiming the job's tenant instead just moves the mismatch to the candidate.
    with violates("fk_applications_organization_id_candidate_id_candidates"):
        db.add(Application(organization_id=org_b.id, candidate_id=candidate.id, job_id=job_b.id))


def test_child_cannot_point_at_another_tenants_file(
    db: Session, graph: Graph, violates: Violates
) -> None:
    other_org = make_org(db)
    foreign_file = make_file(db, other_org)
    with violates("fk_parsed_resumes_organization_id_file_id_files"):
        db.add(
            ParsedResume(
                organization_id=graph.org.id,
                candidate_id=graph.candidate.id,
                file_id=foreign_file.id,
                parser_version="x",
            )
        )


def test_interviewer_must_be_a_member_of_the_tenant(
    db: Session, graph: Graph, violates: Violates
) -> None:
    now = utcnow()
    interview = Interview(
        organization_id=graph.org.id,
        application_id=graph.application.id,
        kind=InterviewKind.VIDEO_CALL,
        scheduled_start=now,
        scheduled_end=now + timedelta(hours=1),
    )
    db.add(interview)
    db.flush()
    outsider = make_user(db)
    make_member(db, make_org(db), outsider)  # a member elsewhere is not enough
    with violates("fk_interview_participants_organization_id_user_id"):
        db.add(
            InterviewParticipant(
                organization_id=graph.org.id,
                interview_id=interview.id,
                user_id=outsider.id,
                role=ParticipantRole.INTERVIEWER,
            )
        )
    db.add(
        InterviewParticipant(
            organization_id=graph.org.id,
            interview_id=interview.id,
            user_id=graph.member.user_id,
            role=ParticipantRole.LEAD,
        )
    )
    db.flush()


def test_same_person_is_a_separate_candidate_in_each_tenant(db: Session) -> None:
    org_a, org_b = make_org(db), make_org(db)
    a = make_candidate(db, org_a, email="same@example.com")
    b = make_candidate(db, org_b, email="same@example.com")
    assert a.email_blind_index == b.email_blind_index
    assert a.id != b.id


def test_set_null_clears_the_reference_not_the_tenant(db: Session, graph: Graph) -> None:
    """Deleting a raw video keeps the response row and its organization_id."""
    question = VideoInterviewQuestion(
        organization_id=graph.org.id, job_id=graph.job.id, prompt="Tell us about you", position=0
    )
    interview = VideoInterview(
        organization_id=graph.org.id,
        application_id=graph.application.id,
        expires_at=utcnow() + timedelta(days=7),
    )
    db.add_all([question, interview])
    db.flush()
    video = make_file(db, graph.org, candidate=graph.candidate, purpose=FilePurpose.VIDEO)
    response = VideoResponse(
        organization_id=graph.org.id,
        video_interview_id=interview.id,
        question_id=question.id,
        file_id=video.id,
    )
    db.add(response)
    db.flush()
    db.execute(text("DELETE FROM files WHERE id = :id"), {"id": video.id})
    db.expire_all()
    reloaded = db.get_one(VideoResponse, response.id)
    assert reloaded.file_id is None
    assert reloaded.organization_id == graph.org.id


def test_deleting_a_candidate_cascades_to_their_data(db: Session, graph: Graph) -> None:
    model = make_model_version(db)
    evaluation = AIEvaluation(
        organization_id=graph.org.id,
        candidate_id=graph.candidate.id,
        job_id=graph.job.id,
        application_id=graph.application.id,
        model_version_id=model.id,
        input_hash="0" * 64,
    )
    db.add(evaluation)
    db.flush()
    db.add(
        EvaluationCriterionScore(
            organization_id=graph.org.id,
            evaluation_id=evaluation.id,
            requirement_id=graph.requirements[0].id,
            criterion_key="req-0",
            score=0.8,
            weight=1.0,
            evidence_text="Senior Python Engineer at Acme",
            evidence_char_start=10,
            evidence_char_end=40,
        )
    )
    embedder = make_embedding_model(db, dimension=3)
    db.add(
        Embedding(
            organization_id=graph.org.id,
            entity_type=EmbeddingEntity.RESUME_CHUNK,
            entity_id=graph.parsed_resume.id,
            candidate_id=graph.candidate.id,
            embedding_model_id=embedder.id,
            dimension=3,
            content_hash="a" * 64,
            embedding=[0.1, 0.2, 0.3],
        )
    )
    db.add(
        CandidateNote(
            organization_id=graph.org.id,
            candidate_id=graph.candidate.id,
            author_user_id=graph.member.user_id,
            body="Strong systems background.",
        )
    )
    db.flush()

    db.execute(text("DELETE FROM candidates WHERE id = :id"), {"id": graph.candidate.id})

    for model_cls in (
        Application,
        ParsedResume,
        File,
        AIEvaluation,
        EvaluationCriterionScore,
        Embedding,
        CandidateNote,
    ):
        count = db.scalar(
            select(func.count())
            .select_from(model_cls)
            .where(model_cls.organization_id == graph.org.id)
        )
        assert count == 0, model_cls.__tablename__
    # The job is the organization's, not the candidate's: it stays.
    assert db.get(JobPosting, graph.job.id) is not None


def test_removing_a_member_keeps_their_notes(db: Session, graph: Graph) -> None:
    note = CandidateNote(
        organization_id=graph.org.id,
        candidate_id=graph.candidate.id,
        author_user_id=graph.member.user_id,
        body="Follow up in spring.",
    )
    db.add(note)
    db.flush()
    db.execute(text("DELETE FROM organization_members WHERE id = :id"), {"id": graph.member.id})
    db.expire_all()
    assert db.get_one(CandidateNote, note.id).author_user_id is None


def test_deleting_an_organization_removes_every_tenant_row(db: Session) -> None:
    graph = make_graph(db)
    survivor = make_graph(db)
    db.add(
        AuditLog(
            organization_id=graph.org.id,
            actor_type=ActorType.SYSTEM,
            action="organization.closed",
        )
    )
    db.flush()
    org_id, candidate_id = graph.org.id, graph.candidate.id
    db.execute(text("DELETE FROM organizations WHERE id = :id"), {"id": org_id})
    db.expunge_all()
    assert db.get(Organization, org_id) is None
    assert db.get(Candidate, candidate_id) is None
    remaining = select(func.count()).select_from(AuditLog).where(AuditLog.organization_id == org_id)
    assert db.scalar(remaining) == 0  # the append-only guard lets an organization go
    assert db.get(Candidate, survivor.candidate.id) is not None
