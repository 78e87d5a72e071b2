"""Long-running, resumable jobs built on the client: ``DeletionJob`` for GDPR erasure."""

from ._deletion import DeletionJob, JobOptions, JobProgress
from ._input import InputReader, InputSpec, Rejected
from ._input_bytes import InputError, JobInterrupted
from ._lock import JournalBusy, JournalError, JournalWriteError
from ._report import JobReport, ReportPathError, check_report_path

__all__ = [
    "DeletionJob", "InputError", "InputReader", "InputSpec", "JobInterrupted", "JobOptions",
    "JobProgress", "JobReport", "JournalBusy", "JournalError", "JournalWriteError", "Rejected",
    "ReportPathError", "check_report_path",
]
