"""Background scenario runs for the web API: a bounded queue of studies solved in a
separate worker process, with progress, and results written under a folder the server owns.

Plumbing only: the study is checked by `critmin.scenarios.schema`, prepared and solved by
`critmin.scenarios.runner` exactly as `critmin run` does. Runs go to a process pool (not
threads) so that a long solve never holds the serving process's interpreter lock: reads
stay fast while runs go on. A run's state lives in `<root>/<id>/status.json` (written
atomically by whichever process owns the run), so every process of a multi-worker server,
and a restarted one, answers for every run; a run whose process died reads as failed.
Folder names are random job ids, never user input; a full queue raises `QueueFull` (HTTP
429) instead of piling up work.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import Any

import pandas as pd
import platformdirs

from critmin.data.io import write_json_atomic
from critmin.errors import CritminError, NotFoundError
from critmin.scenarios.runner import run_study, study_work
from critmin.scenarios.schema import Study, validate_study

TABLES = ("markets", "prices", "flows", "ensemble")
RUNS_DIR_ENV = "CRITMIN_WEB_RUNS_DIR"
STATUS_FILE = "status.json"
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_SAVE_EVERY_S = 0.25  # progress is written to disk at most this often
log = logging.getLogger("critmin.web")


class QueueFull(CritminError):
    """Too many runs waiting; the client should retry later."""


def default_runs_dir() -> Path:
    """$CRITMIN_WEB_RUNS_DIR, else `runs` in the platform's user cache folder."""
    configured = os.environ.get(RUNS_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("critmin", appauthor=False)) / "runs"


def _now(timespec: str = "seconds") -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec=timespec)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


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
    created: str = field(default_factory=lambda: _now("microseconds"))  # orders runs
    started: str | None = None
    finished: str | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None
    _saved: float = 0.0

    def view(self) -> dict[str, Any]:
        """What GET /api/runs/{id} answers (and status.json holds, with the pid)."""
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
            "study": self.study.model_dump(mode="json"),  # a permalink refills the form
            "tables": [t for t in TABLES if (self.folder / f"{t}.parquet").exists()]
            if self.status == "done"
            else [],
        }

    def save(self, force: bool = True) -> None:
        """Write status.json (throttled unless `force`: progress comes many times a second)."""
        if not force and time.monotonic() - self._saved < _SAVE_EVERY_S:
            return
        self._saved = time.monotonic()
        write_json_atomic(self.folder / STATUS_FILE, {**self.view(), "pid": os.getpid()})


def _execute(ident: str, folder: str, study_data: dict, created: str) -> None:
    """Run one study in a pool process, keeping status.json up to date (never raises)."""
    study = validate_study(study_data)
    job = Job(ident, study, Path(folder), study_work(study), created=created)
    job.status, job.started = "running", _now()
    job.save()

    def progress(step: str, done: int, total: int) -> None:
        job.step, job.done = step, done
        job.save(force=False)

    try:
        job.summary = run_study(study, out=job.folder, progress=progress)["summary"]
        job.status = "done"
    except CritminError as error:
        job.error, job.status = str(error), "failed"
    except Exception as error:  # a defect: logged here, the client gets one line
        log.exception("run %s failed", ident)
        job.error = f"internal error ({type(error).__name__}); see the server log"
        job.status = "failed"
    finally:
        job.finished = _now()
        job.save()


class RunQueue:
    """Runs studies in `workers` processes; at most `max_waiting` queued, `keep` kept.

    Results go to `root/<job id>/` through `write_results` (atomic files, summary.json
    last). When more than `keep` run folders exist, the oldest finished ones are deleted.
    The pool starts with the first run (spawned processes, fresh interpreters: no lock
    or thread state copied from the server) and each process is replaced after 20 runs,
    which bounds memory.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        workers: int = 1,
        max_waiting: int = 8,
        keep: int = 100,
    ) -> None:
        self.root = Path(root) if root else default_runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.workers = workers
        self.max_waiting = max_waiting
        self.keep = keep
        self._pool: Pool | None = None
        self._pending: dict[str, AsyncResult] = {}
        self._lock = threading.Lock()

    def submit(self, study: Study) -> str:
        """Queue a checked study; returns its id. `QueueFull` when too many are waiting."""
        with self._lock:
            self._pending = {k: r for k, r in self._pending.items() if not r.ready()}
            waiting = len(self._pending) - self.workers
            if waiting >= self.max_waiting:
                raise QueueFull(
                    f"{waiting} runs are already waiting on this server; retry in a minute"
                )
            if self._pool is None:
                self._pool = get_context("spawn").Pool(self.workers, maxtasksperchild=20)
            ident = uuid.uuid4().hex
            job = Job(ident, study, self.root / ident, study_work(study))
            job.folder.mkdir()
            job.save()  # queued, owned by this process until a pool process takes it
            self._pending[ident] = self._pool.apply_async(
                _execute, (ident, str(job.folder), study.model_dump(mode="json"), job.created)
            )
        self._prune()
        return ident

    def _prune(self) -> None:
        """Delete the oldest finished run folders beyond `keep` (this and other processes')."""
        views = [v for v in map(self._stored, self._folders()) if v is not None]
        finished = sorted(
            (v for v in views if v["status"] in ("done", "failed")), key=lambda v: v["created"]
        )
        for view in finished[: max(0, len(views) - self.keep)]:
            shutil.rmtree(self.root / view["id"], ignore_errors=True)

    def _folders(self) -> list[str]:
        return [p.name for p in self.root.iterdir() if _RUN_ID.fullmatch(p.name)]

    def _stored(self, ident: str) -> dict[str, Any] | None:
        """A run's state from status.json; a run whose process is gone is failed."""
        try:
            view = json.loads((self.root / ident / STATUS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if view["status"] in ("queued", "running") and not _alive(int(view.get("pid", 0))):
            view["status"] = "failed"
            view["error"] = "the server stopped during this run; submit it again"
        view.pop("pid", None)
        return view

    def view(self, ident: str) -> dict[str, Any]:
        """A run's state (status, progress, summary when done)."""
        view = self._stored(ident) if _RUN_ID.fullmatch(ident) else None
        if view is None:
            raise NotFoundError(f"no run {ident!r} on this server (see GET /api/runs)")
        return view

    def views(self) -> list[dict[str, Any]]:
        """Every run this server keeps, oldest first, without summaries and studies."""
        found = [v for v in map(self._stored, self._folders()) if v is not None]
        ordered = sorted(found, key=lambda v: v["created"])
        return [
            {k: v for k, v in view.items() if k not in ("summary", "study")} for view in ordered
        ]

    def table(self, ident: str, name: str) -> pd.DataFrame:
        """One result table of a finished run."""
        view = self.view(ident)
        if view["status"] != "done":
            raise NotFoundError(f"run {ident} is {view['status']}; its tables come when done")
        if name not in view["tables"]:
            raise NotFoundError(f"run {ident} has no {name!r} table (it has {view['tables']})")
        return pd.read_parquet(self.root / ident / f"{name}.parquet")

    def close(self) -> None:
        """Stop the pool; a run cut short reads as failed (its process is gone)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
