"""Background scenario runs for the web API: a bounded queue of studies solved in worker
threads, with progress, and results written under a folder the server owns.

Plumbing only: the study is checked by `critmin.scenarios.schema`, prepared and solved by
`critmin.scenarios.runner` exactly as `critmin run` does. Folder names are random job ids
(never user input); a full queue answers `QueueFull` (HTTP 429) instead of piling up work.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from critmin.errors import CritminError, NotFoundError
from critmin.scenarios.runner import Prepared, run_study, study_work
from critmin.scenarios.schema import Study

TABLES = ("markets", "prices", "flows", "ensemble")
log = logging.getLogger("critmin.web")


class QueueFull(CritminError):
    """Too many runs waiting; the client should retry later."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class Job:
    """One scenario run: its state, progress (units of `study_work`) and outcome."""

    id: str
    study: Study
    folder: Path
    total: int
    status: str = "queued"  # queued → running → done | failed
    step: str = ""
    done: int = 0
    created: str = field(default_factory=_now)
    started: str | None = None
    finished: str | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None

    def view(self) -> dict[str, Any]:
        """What GET /api/runs/{id} answers."""
        return {
            "id": self.id,
            "name": self.study.name,
            "status": self.status,
            "step": self.step,
            "done": self.done,
            "total": self.total,
            "progress": self.done / self.total if self.total else 0.0,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "error": self.error,
            "summary": self.summary,
            "tables": [t for t in TABLES if (self.folder / f"{t}.parquet").exists()]
            if self.status == "done"
            else [],
        }


class RunQueue:
    """Runs studies in `workers` threads; at most `max_waiting` queued, `keep` remembered.

    Results go to `root/<job id>/` (a fresh temporary folder by default) through
    `write_results` (atomic files, summary.json last); the folders of forgotten jobs are
    deleted.
    """

    def __init__(
        self, root: Path | None = None, workers: int = 1, max_waiting: int = 8, keep: int = 100
    ) -> None:
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="critmin-runs-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_waiting = max_waiting
        self.keep = keep
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="critmin-run")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def submit(self, study: Study, prepared: Prepared) -> Job:
        """Queue a checked, prepared study; `QueueFull` when too many are waiting."""
        with self._lock:
            waiting = sum(job.status == "queued" for job in self._jobs.values())
            if waiting >= self.max_waiting:
                raise QueueFull(
                    f"{waiting} runs are already waiting on this server; retry in a minute"
                )
            ident = uuid.uuid4().hex
            job = Job(ident, study, self.root / ident, study_work(study))
            self._jobs[ident] = job
            self._forget_old()
        self._pool.submit(self._run, job, prepared)
        return job

    def _run(self, job: Job, prepared: Prepared) -> None:
        job.status, job.started = "running", _now()

        def progress(step: str, done: int, total: int) -> None:
            job.step, job.done = step, done

        try:
            outcome = run_study(job.study, out=job.folder, progress=progress, prepared=prepared)
            job.summary = outcome["summary"]
            job.status = "done"
        except CritminError as error:
            job.error, job.status = str(error), "failed"
        except Exception as error:  # a defect: logged here, the client gets one line
            log.exception("run %s failed", job.id)
            job.error = f"internal error ({type(error).__name__}); see the server log"
            job.status = "failed"
        finally:
            job.finished = _now()

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status in ("done", "failed")]
        for job in finished[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[job.id]
            shutil.rmtree(job.folder, ignore_errors=True)

    def get(self, ident: str) -> Job:
        job = self._jobs.get(ident)
        if job is None:
            raise NotFoundError(f"no run {ident!r} on this server (see GET /api/runs)")
        return job

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def table(self, ident: str, name: str) -> pd.DataFrame:
        """One result table of a finished run."""
        job = self.get(ident)
        if job.status != "done":
            raise NotFoundError(f"run {ident} is {job.status}; its tables come when it is done")
        path = job.folder / f"{name}.parquet"
        if name not in TABLES or not path.exists():
            raise NotFoundError(f"run {ident} has no {name!r} table (outputs: {job.study.outputs})")
        return pd.read_parquet(path)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
