"""Long-running, resumable jobs built on the client: ``DeletionJob`` for GDPR erasure."""

from ._deletion import DeletionJob, JobInterrupted, JobOptions, JobProgress
from ._input import InputError, InputSpec
from ._journal import JournalBusy, JournalError
from ._report import JobReport, ReportPathError, check_report_path

__all__ = [
    "DeletionJob", "InputError", "InputSpec", "JobInterrupted", "JobOptions", "JobProgress",
    "JobReport", "JournalBusy", "JournalError", "ReportPathError", "check_report_path",
]
