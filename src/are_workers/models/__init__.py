"""The shared schema. Importing this package registers every table on ``Base.metadata``."""

from are_workers.models.base import Base, Model
from are_workers.models.organizations import Organization
from are_workers.models.task_runs import TaskRun, TaskStatus

__all__ = ["Base", "Model", "Organization", "TaskRun", "TaskStatus"]
