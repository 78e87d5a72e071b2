"""Long-running, resumable jobs built on the client: ``DeletionJob`` for GDPR erasure."""

from ._deletion import DeletionJob, JobOptions, JobProgress
from ._report import JobReport

__all__ = ["DeletionJob", "JobOptions", "JobProgress", "JobReport"]
