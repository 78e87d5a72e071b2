"""Long-running, resumable jobs built on the client: ``DeletionJob`` for GDPR erasure, across one
project or many, and its verification."""

from ._deletion import DeletionJob, JobOptions, JobProgress
from ._input import InputReader, InputSpec, Rejected
from ._input_bytes import InputError, JobInterrupted
from ._job_projects import ALL_PROJECTS
from ._journal_projects import JobProject
from ._lock import JournalBusy, JournalError, JournalWriteError
from ._report import JobReport, ReportPathError, check_report_path
from ._verify import EventBatchSchedule, VerifyProgress, verify_job

__all__ = [
    "ALL_PROJECTS", "DeletionJob", "EventBatchSchedule", "InputError", "InputReader", "InputSpec",
    "JobInterrupted", "JobOptions", "JobProgress", "JobProject", "JobReport", "JournalBusy",
    "JournalError", "JournalWriteError", "Rejected", "ReportPathError", "VerifyProgress",
    "check_report_path", "verify_job",
]
