"""Ray's Jobs SDK on rayc: submit, follow and stop jobs on a cluster's head through its
dashboard (see sdk.py for how the dashboard and the token are found)."""

from ray.job_submission.common import DriverInfo, JobDetails, JobErrorType, JobInfo, JobStatus, JobType
from ray.job_submission.sdk import JobSubmissionClient

__all__ = [
    "JobSubmissionClient",
    "JobStatus",
    "JobErrorType",
    "JobInfo",
    "JobDetails",
    "DriverInfo",
    "JobType",
]
