"""Background jobs for work longer than a request (videos): one worker, progress counters, result files.

Each job owns a folder under one temporary root; a job's input is deleted as soon as the job ends, its
outputs are kept for download until ``keep`` newer jobs exist or the process exits.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Job:
    id: str
    folder: Path
    label: str
    status: str = "queued"  # queued -> running -> done | failed
    done: int = 0
    total: int | None = None
    error: str | None = None
    outputs: dict[str, Path] = field(default_factory=dict)  # download name -> file in the job's folder
    summary: dict = field(default_factory=dict)

    @property
    def percent(self) -> int | None:
        if self.status == "done":
            return 100
        return None if not self.total else min(99, int(100 * self.done / self.total))


class Jobs:
    """A queue of jobs run one at a time (the pages share a small CPU), in a private temporary root."""

    def __init__(self, keep: int = 10):
        self.root = Path(tempfile.mkdtemp(prefix="fourfold-web-jobs-"))
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fourfold-web-job")
        atexit.register(self.close)

    def create(self, label: str) -> Job:
        job = Job(uuid.uuid4().hex, self.root / uuid.uuid4().hex, label)
        job.folder.mkdir()
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                _, old = self._jobs.popitem(last=False)
                shutil.rmtree(old.folder, ignore_errors=True)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def submit(self, job: Job, work, *inputs: Path, errors: tuple[type[Exception], ...] = (ValueError,)):
        """Run ``work(job)`` on the worker and return its Future; delete ``inputs`` when it ends. An
        exception in ``errors`` becomes the job's message; any other is reported by type and first line."""

        def run():
            job.status = "running"
            try:
                work(job)
                job.status = "done"
            except errors as err:
                job.status, job.error = "failed", " ".join(str(err).split())
            except Exception as err:  # noqa: BLE001 - the page shows one line, never a stack trace
                job.status, job.error = "failed", f"unexpected error: {type(err).__name__}: {str(err)[:200]}"
            finally:
                for path in inputs:
                    path.unlink(missing_ok=True)

        return self._worker.submit(run)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.root, ignore_errors=True)
