"""The shared schema. Importing this package registers every table on ``Base.metadata``.

Modules follow the seed's layout: core (users, organizations, files, subscription),
recruitment (jobs, candidates, applications, interviews, assessments), AI (ai_evaluations,
ai_assessments_ext, deep_evaluations, chat_sessions, video_interviews, embeddings),
supporting (communications, audit, privacy, fairness), workers (task_runs) and utilities
(security, relationships, engine).
``docs/schema.md`` is generated from this metadata.
"""

from are_workers.models import (
    ai_assessments_ext,
    ai_evaluations,
    applications,
    assessments,
    audit,
    candidates,
    chat_sessions,
    communications,
    deep_evaluations,
    embeddings,
    fairness,
    files,
    interviews,
    jobs,
    organizations,
    privacy,
    relationships,
    subscription,
    task_runs,
    users,
    video_interviews,
)
from are_workers.models.ai_evaluations import AIEvaluation, AIModelVersion, EvaluationCriterionScore
from are_workers.models.applications import Application
from are_workers.models.base import Base, Model
from are_workers.models.candidates import Candidate, CandidateConsent, ParsedResume
from are_workers.models.embeddings import Embedding, EmbeddingModel, MatchResult
from are_workers.models.files import File
from are_workers.models.jobs import JobPosting, JobRequirement, Skill
from are_workers.models.organizations import Organization, OrganizationMember
from are_workers.models.subscription import UsageRecord
from are_workers.models.task_runs import TaskRun, TaskStatus
from are_workers.models.users import User

#: The seed's module layout: module name → section of docs/schema.md.
MODULE_GROUPS: dict[str, str] = {
    "users": "Core",
    "organizations": "Core",
    "files": "Core",
    "subscription": "Core",
    "jobs": "Recruitment",
    "candidates": "Recruitment",
    "applications": "Recruitment",
    "interviews": "Recruitment",
    "assessments": "Recruitment",
    "ai_evaluations": "AI",
    "ai_assessments_ext": "AI",
    "deep_evaluations": "AI",
    "chat_sessions": "AI",
    "video_interviews": "AI",
    "embeddings": "AI",
    "communications": "Supporting",
    "audit": "Supporting",
    "privacy": "Supporting",
    "fairness": "Supporting",
    "task_runs": "Workers",
}

__all__ = [
    "MODULE_GROUPS",
    "AIEvaluation",
    "AIModelVersion",
    "Application",
    "Base",
    "Candidate",
    "CandidateConsent",
    "Embedding",
    "EmbeddingModel",
    "EvaluationCriterionScore",
    "File",
    "JobPosting",
    "JobRequirement",
    "MatchResult",
    "Model",
    "Organization",
    "OrganizationMember",
    "ParsedResume",
    "Skill",
    "TaskRun",
    "TaskStatus",
    "UsageRecord",
    "User",
    "ai_assessments_ext",
    "ai_evaluations",
    "applications",
    "assessments",
    "audit",
    "candidates",
    "chat_sessions",
    "communications",
    "deep_evaluations",
    "embeddings",
    "fairness",
    "files",
    "interviews",
    "jobs",
    "organizations",
    "privacy",
    "relationships",
    "subscription",
    "task_runs",
    "users",
    "video_interviews",
]
