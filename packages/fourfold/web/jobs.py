"""Background jobs for work longer than a request (videos, and stills waiting their turn): one worker,
a bounded queue, progress counters, cancellation and result files.

Each job owns a folder under ``root`` (a folder of the app's workspace). A job's input is deleted as soon
as the job ends; its outputs stay downloadable until ``keep`` newer jobs have finished. Only finished jobs
(done, failed or cancelled) are ever evicted: a queued or running job keeps its page and folder. At most
``max_pending`` jobs wait or run at once; one more is refused with ``QueueFull`` (the app answers 503 with
Retry-After). Cancelling a queued job drops it; a running one stops at its next ``checkpoint(job)``.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path

from fourfold.web.uploads import without_paths

FINISHED = ("done", "failed", "cancelled")


class QueueFull(Exception):
    """Every slot of the queue is taken; ``retry_after`` is a suggested wait in seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"the server is busy with other files; try again in {retry_after} s")
        self.retry_after = retry_after


class JobCancelled(Exception):
    """Raised inside a job's work at a checkpoint after the user cancelled it."""


@dataclass
class Job:
    id: str
    folder: Path
    label: str
    status: str = "queued"  # queued -> running -> done | failed | cancelled
    done: int = 0
    total: int | None = None
    error: str | None = None
    outputs: dict[str, Path] = field(default_factory=dict)  # download name -> file in the job's folder
    summary: dict = field(default_factory=dict)
    cancel_requested: bool = False
    future: Future | None = field(default=None, repr=False)
    inputs: tuple[Path, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def percent(self) -> int | None:
        if self.status == "done":
            return 100
        return None if not self.total else min(99, int(100 * self.done / self.total))


def checkpoint(job: Job) -> None:
    """Call from a job's work between steps: stops the work when the job was cancelled."""
    if job.cancel_requested:
        raise JobCancelled


class Jobs:
    """A queue of jobs run one at a time (the pages share a small CPU), in folders under ``root``."""

    def __init__(self, root: Path, keep: int = 10, max_pending: int = 8, retry_after: int = 10):
        self.root, self.keep, self.max_pending, self.retry_after = Path(root), keep, max_pending, retry_after
        self.root.mkdir(parents=True, exist_ok=True)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fourfold-web-job")
        self._closed = False

    def pending(self) -> int:
        with self._lock:
            return sum(not job.finished for job in self._jobs.values())

    def check_room(self) -> None:
        """``QueueFull`` when no job could be created now (a cheap check before reading an upload)."""
        if self._closed or self.pending() >= self.max_pending:
            raise QueueFull(self.retry_after)

    def create(self, label: str) -> Job:
        """A new queued job with its folder; ``QueueFull`` when ``max_pending`` jobs wait or run."""
        with self._lock:
            if self._closed or sum(not job.finished for job in self._jobs.values()) >= self.max_pending:
                raise QueueFull(self.retry_after)
            job = Job(uuid.uuid4().hex, self.root / uuid.uuid4().hex, label)
            job.folder.mkdir()
            self._jobs[job.id] = job
        return job

    def discard(self, job: Job) -> None:
        """Forget a job that was created but never submitted (its request failed), with its folder."""
        with self._lock:
            self._jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _evict(self) -> None:
        with self._lock:
            finished = [job for job in self._jobs.values() if job.finished]
            for old in finished[: max(0, len(finished) - self.keep)]:
                del self._jobs[old.id]
                shutil.rmtree(old.folder, ignore_errors=True)

    def submit(self, job: Job, work, *inputs: Path, errors: tuple[type[Exception], ...] = (ValueError,)):
        """Run ``work(job)`` on the worker and return its Future; delete ``inputs`` when it ends. An
        exception in ``errors`` becomes the job's message; any other is reported by type and first line,
        without server paths."""
        job.inputs = inputs

        def run():
            try:
                checkpoint(job)
                job.status = "running"
                work(job)
                checkpoint(job)
                job.status = "done"
            except JobCancelled:
                self._drop_outputs(job)
            except errors as err:
                job.status, job.error = "failed", without_paths(err)
            except Exception as err:  # noqa: BLE001 - the page shows one line, never a stack trace
                job.status, job.error = (
                    "failed",
                    f"unexpected error: {type(err).__name__}: {without_paths(err)[:200]}",
                )
            finally:
                self._delete(inputs)
                self._evict()

        job.future = self._worker.submit(run)
        return job.future

    def _drop_outputs(self, job: Job) -> None:
        job.status, job.outputs, job.summary = "cancelled", {}, {}
        shutil.rmtree(job.folder, ignore_errors=True)

    @staticmethod
    def _delete(inputs) -> None:
        for path in inputs:
            path.unlink(missing_ok=True)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job (a finished one is left as it is); returns it, or None."""
        job = self.get(job_id)
        if job is None or job.finished:
            return job
        job.cancel_requested = True
        if job.future is not None and job.future.cancel():  # still queued: it will never run
            self._drop_outputs(job)
            self._delete(job.inputs)
            self._evict()
        return job

    def close(self, wait_s: float = 10.0) -> None:
        """Cancel every job and stop the worker, waiting up to ``wait_s`` for a running job to stop."""
        with self._lock:
            self._closed = True
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel_requested = True
        self._worker.shutdown(wait=False, cancel_futures=True)
        for job in jobs:
            if job.future is not None and not job.future.cancelled():
                try:
                    job.future.result(timeout=wait_s)
                except (FutureTimeout, CancelledError):
                    pass
