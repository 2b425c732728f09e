"""Crash safety (issue "Hardening", item 4): `critmin` killed with SIGKILL during writes and
long runs, then restarted on what it left behind.

Every test drives real subprocesses (`python -m critmin ...`, each in a session of its own)
and ends them with a real SIGKILL to the whole process group, at chosen points (found by
watching the files the process writes) and at random ones; nothing is mocked. After a kill
the registry must pass SQLite's integrity check and hold every acknowledged write, and a
result folder must hold only complete files. `make test` kills at 3 or 4 points per
scenario, CRITMIN_STRESS=1 (`make stress`) at about 20; CRITMIN_CRASH_SEED replays the random
choices (the seed is printed with any failure).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from critmin.registry.records import COMMITMENT_FIELDS, MILESTONE_FIELDS
from critmin.registry.store import SEED_FILE, Registry
from critmin.registry.tokens import create_token
from tests.fuzz import STRESS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KILLS = 20 if STRESS else 3  # kill points per scenario
STEP_TIMEOUT_S = 180  # no step takes this long, even on a loaded 2-core machine
SEED_RECORDS = json.loads(SEED_FILE.read_text("utf-8"))["agreements"]


# --- processes ---------------------------------------------------------------------------


def critmin(*args: str) -> list[str]:
    """The command line of `critmin ARGS` run by the Python that runs the tests."""
    return [sys.executable, "-m", "critmin", *args]


def crash_env(tmp_path: Path, db: Path) -> dict[str, str]:
    """The environment of a critmin subprocess: registry, dataset and runs under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRITMIN_")}
    env.update(
        {
            "CRITMIN_DB_URL": f"sqlite:///{db}",
            "CRITMIN_DATA_DIR": str(tmp_path / "user-data"),
            "CRITMIN_WEB_RUNS_DIR": str(tmp_path / "web-runs"),
            "PYTHONUNBUFFERED": "1",  # what the CLI prints reaches the test at once
        }
    )
    return env


def sigkill(proc: subprocess.Popen) -> bool:
    """SIGKILL the process group of `proc` (it and any workers it started); True if the
    signal is what ended `proc`, False if it had exited already."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return proc.returncode == -signal.SIGKILL


def stderr_of(proc: subprocess.Popen) -> str:
    """The end of what `proc` wrote to standard error."""
    return Path(proc.stderr_log).read_text("utf-8", "replace")[-3000:]  # type: ignore[attr-defined]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start a command in a new session (its own process group, so that a kill reaches its
    workers too); every group still alive at the end of the test is killed."""
    started: list[subprocess.Popen] = []

    def start(
        args: list[str], env: dict[str, str], stdout: int = subprocess.DEVNULL
    ) -> subprocess.Popen:
        log = tmp_path / f"stderr-{len(started)}.txt"
        with open(log, "wb") as stderr:
            proc = subprocess.Popen(
                args,
                env=env,
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        proc.stderr_log = log  # type: ignore[attr-defined]
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            sigkill(proc)
            if proc.stdout:
                proc.stdout.close()


@pytest.fixture
def rng() -> random.Random:
    """Random kill points; CRITMIN_CRASH_SEED=N replays a failed test's choices."""
    seed = int(os.environ.get("CRITMIN_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"CRITMIN_CRASH_SEED={seed}")  # pytest shows it with a failure
    return random.Random(seed)


def wait_until(
    condition: Callable[[], Any],
    proc: subprocess.Popen,
    what: str,
    poll_s: float = 0.001,
    timeout_s: float = STEP_TIMEOUT_S,
) -> None:
    """Poll `condition` until true; fail if `proc` ends first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None:
            pytest.fail(
                f"waiting for {what}: the process ended first (exit {proc.returncode})\n"
                + stderr_of(proc)
            )
        if time.monotonic() > deadline:
            pytest.fail(f"waiting for {what}: nothing after {timeout_s} s\n" + stderr_of(proc))
        time.sleep(poll_s)


def cli_json(env: dict[str, str], *args: str) -> Any:
    """Run `critmin ARGS` to its end and parse the JSON it prints."""
    done = subprocess.run(
        critmin(*args), env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S
    )
    assert done.returncode == 0, f"critmin {' '.join(args)}: {done.stderr[-3000:]}"
    return json.loads(done.stdout)


# --- the registry ------------------------------------------------------------------------


def integrity_check(db: Path) -> None:
    """SQLite's own checks of the file as the kill left it (opening it replays the WAL)."""
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        con.close()


def wal_bytes(db: Path) -> int:
    """Size of the registry's write-ahead log (0 when there is none)."""
    try:
        return db.with_name(db.name + "-wal").stat().st_size
    except FileNotFoundError:
        return 0


def has_table(db: Path, name: str) -> bool:
    """Whether a committed table `name` is in the registry (looked at only once the file is
    in WAL mode, so that this reader never holds the lock the first open needs)."""
    if not db.with_name(db.name + "-wal").exists():
        return False
    try:
        con = sqlite3.connect(db, timeout=0.05)
        try:
            row = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
            ).fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError:
        return False
    return row is not None


@contextlib.contextmanager
def registry_at(db: Path, seed: bool = False) -> Iterator[Registry]:
    """The registry in `db`, opened in the test process and closed again."""
    registry = Registry(f"sqlite:///{db}", seed=seed)
    try:
        yield registry
    finally:
        registry.engine.dispose()


def agreement(ident: str, number: int) -> dict[str, Any]:
    """A valid agreement: seed record `number` (cycled) under a new id, written with every
    field the registry gives back, so that what is stored must equal what was sent."""
    base = SEED_RECORDS[number % len(SEED_RECORDS)]
    plain = ("kind", "status", "signed", "effective", "expiry", "source_url", "notes")
    return {
        "id": ident,
        "title": f"{base['title'][:280]} #{number}",
        **{field: base.get(field) for field in plain},
        "parties": [
            {"party": p["party"], "lead_agency": p.get("lead_agency")}
            if isinstance(p, dict)
            else {"party": p, "lead_agency": None}
            for p in base["parties"]
        ],
        "minerals": list(base.get("minerals") or []),
        "commitments": [
            {f: c.get(f) for f in COMMITMENT_FIELDS} for c in base.get("commitments") or []
        ],
        "milestones": [
            {f: m.get(f) for f in MILESTONE_FIELDS} for m in base.get("milestones") or []
        ],
        "sources": list(base.get("sources") or []),
    }


def as_sent(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record without the fields the registry adds (archived, version)."""
    return {k: v for k, v in record.items() if k not in ("archived", "version")}


# --- 1. `critmin agreements import` ------------------------------------------------------

IMPORT_SIZE = 2000  # agreements per import: about 5 MB of WAL before its commit


def test_agreements_import_killed_mid_write_is_all_or_nothing(tmp_path, spawn, rng):
    """SIGKILL during `critmin agreements import` (one transaction) leaves a registry that
    passes PRAGMA integrity_check and foreign_key_check, holds all of the file's agreements
    (equal to the file) or none of them, keeps every earlier agreement and audit entry
    unchanged, never loses an import the CLI acknowledged, and is read back by the next
    `critmin agreements list` and `show`. Kill points: during start-up, inside the
    transaction once its pages are in the WAL (uncommitted frames on disk), right after
    the 'imported' acknowledgement (committed frames not yet checkpointed), and at random."""
    db = tmp_path / "registry.sqlite"
    env = crash_env(tmp_path, db)
    with registry_at(db, seed=True) as registry:
        expected = {r["id"]: r for r in registry.records(include_archived=True)}
        audits = registry.audit_count()
    assert len(expected) == len(SEED_RECORDS)
    points = ["early", "in_transaction", "acknowledged"]
    points += [rng.choice([*points, "random"]) for _ in range(KILLS - len(points))]
    outcomes: list[dict[str, Any]] = []
    full_s = 6.0
    for n, point in enumerate(points):
        records = [agreement(f"import{n}-{i:05d}", i) for i in range(IMPORT_SIZE)]
        path = tmp_path / f"import{n}.json"
        path.write_text(json.dumps({"agreements": records}), "utf-8")
        proc = spawn(
            critmin("agreements", "import", str(path), "--actor", "crash-test"),
            env,
            stdout=subprocess.PIPE,
        )
        began = time.monotonic()
        if point == "early":  # interpreter start-up, reading and checking the file
            time.sleep(rng.uniform(0.05, 0.8))
        elif point == "random":
            time.sleep(rng.uniform(0.0, full_s))
        elif point == "in_transaction":  # the import's pages spill into the WAL as it goes
            threshold = rng.randint(64 << 10, 3 << 20)
            wait_until(lambda t=threshold: wal_bytes(db) > t, proc, "the import to reach the WAL")
        else:  # "acknowledged": the CLI has said the import is done
            line = proc.stdout.readline().decode("utf-8", "replace")
            assert line.startswith(f"imported {IMPORT_SIZE} "), line + stderr_of(proc)
            full_s = time.monotonic() - began
        wal_at_kill = wal_bytes(db)
        killed = sigkill(proc)

        integrity_check(db)
        with registry_at(db) as registry:
            present = {r["id"]: r for r in registry.records(include_archived=True)}
            audit_entries = registry.audit_count()
        found = [r["id"] for r in records if r["id"] in present]
        assert len(found) in (0, IMPORT_SIZE), f"{point}: {len(found)} of one import's records"
        committed = bool(found)
        if committed:
            for record in records:
                assert as_sent(present[record["id"]]) == record, record["id"]
                expected[record["id"]] = present[record["id"]]
            audits += IMPORT_SIZE
        assert present == expected, f"{point}: earlier agreements changed or extra ones appeared"
        assert audit_entries == audits, f"{point}: the audit log does not match the agreements"
        if point == "acknowledged":
            assert committed, "an import the CLI acknowledged was lost"
        if point in ("early", "in_transaction"):
            assert killed, f"{point}: the import had ended before the kill"
        outcomes.append(
            {"point": point, "killed": killed, "committed": committed, "wal": wal_at_kill}
        )
        listed = cli_json(env, "agreements", "list", "--archived", "--format", "json")
        assert {r["id"] for r in listed} == set(expected), f"{point}: list after restart"

    # Not vacuous: one kill hit the transaction with its uncommitted pages already on disk.
    assert any(
        o["point"] == "in_transaction" and o["killed"] and not o["committed"] and o["wal"]
        for o in outcomes
    ), outcomes
    imported = sorted(i for i in expected if i.startswith("import"))  # at least the acknowledged
    for ident in (imported[-1], min(expected)):
        assert cli_json(env, "agreements", "show", ident, "--format", "json") == expected[ident]
    print("kills:", outcomes)


def test_first_start_killed_after_the_migration_still_seeds_the_registry(tmp_path, spawn):
    """A SIGKILL while the first `critmin` command creates the registry, once its tables are
    committed and before the seed agreements are, leaves a file that passes the integrity
    check and that the next start completes: it then holds the seed agreements, like any
    registry whose first start was not interrupted."""
    for attempt in range(5 if STRESS else 1):
        db = tmp_path / f"new-{attempt}.sqlite"
        env = crash_env(tmp_path, db)
        proc = spawn(critmin("agreements", "list", "--format", "json"), env)
        wait_until(lambda d=db: has_table(d, "agreement"), proc, "the registry's tables")
        assert sigkill(proc), "the first start had ended before the kill"
        integrity_check(db)
        listed = cli_json(env, "agreements", "list", "--format", "json")
        assert len(listed) == len(SEED_RECORDS), f"{len(listed)} agreements after the restart"


# --- 2. `critmin serve` ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(spawn, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`critmin serve` on a free port, once it answers."""
    port = free_port()
    proc = spawn(critmin("serve", "--host", "127.0.0.1", "--port", str(port)), env)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/api/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answers, proc, "the server to answer", poll_s=0.1)
    return proc, base


class Ledger:
    """What the client threads sent, what the server acknowledged (201) and what failed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: dict[str, dict] = {}
        self.started: dict[str, float] = {}
        self.acked: dict[str, dict] = {}
        self.failed: dict[str, str] = {}  # no answer: the connection broke or was refused
        self.errors: list[str] = []  # an answer other than 201: never expected


def post_agreements(
    base: str, headers: dict, prefix: str, ledger: Ledger, stop: threading.Event
) -> None:
    """POST new agreements one after another until told to stop or the server is gone."""
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        number = 0
        while not stop.is_set():
            ident = f"{prefix}-{number:05d}"
            record = agreement(ident, number)
            number += 1
            with ledger.lock:
                ledger.sent[ident] = record
                ledger.started[ident] = time.monotonic()
            try:
                response = client.post("/api/agreements", json=record)
            except httpx.TransportError as exc:
                with ledger.lock:
                    ledger.failed[ident] = repr(exc)
                return
            with ledger.lock:
                if response.status_code == 201:
                    ledger.acked[ident] = response.json()
                else:
                    ledger.errors.append(f"{ident}: {response.status_code} {response.text[:300]}")
                    return


def read_back(base: str, acked: dict[str, dict]) -> None:
    """Every acknowledged agreement is served as it was acknowledged."""
    with httpx.Client(base_url=base, timeout=60) as client:
        for ident, body in acked.items():
            response = client.get(f"/api/agreements/{ident}")
            assert response.status_code == 200, f"acknowledged {ident}: {response.text[:300]}"
            assert response.json() == body, f"acknowledged {ident} changed"
        listed = {r["id"] for r in client.get("/api/agreements").json()}
        assert set(acked) <= listed


def test_server_killed_during_posts_keeps_every_acknowledged_write(tmp_path, spawn, rng):
    """SIGKILL of `critmin serve` (its whole process group) while three clients POST
    agreements: the registry passes PRAGMA integrity_check, every agreement answered with
    201 is stored exactly as sent and as acknowledged, a POST cut off by the kill is stored
    whole or not at all, earlier agreements are unchanged, every stored agreement has its
    audit entry, and the restarted server serves every acknowledged agreement over HTTP."""
    db = tmp_path / "registry.sqlite"
    env = crash_env(tmp_path, db)
    with registry_at(db, seed=True) as registry:
        secret = create_token(registry, "crash-test")
        seeded = {r["id"]: r for r in registry.records(include_archived=True)}
    headers = {"Authorization": f"Bearer {secret}"}
    ledger = Ledger()
    cut_off = 0  # POSTs sent before a kill and never answered
    unanswered_but_stored = 0
    for round_ in range(KILLS):
        server, base = start_server(spawn, env)
        read_back(base, ledger.acked)  # the restart serves what the killed server acknowledged
        stop = threading.Event()
        clients = [
            threading.Thread(
                target=post_agreements,
                args=(base, headers, f"round{round_}-client{k}", ledger, stop),
                daemon=True,
            )
            for k in range(3)
        ]
        target = len(ledger.acked) + rng.randint(1, 40)
        failed_before = set(ledger.failed)
        for client in clients:
            client.start()
        wait_until(
            lambda t=target, f=len(failed_before): (
                len(ledger.acked) >= t or ledger.errors or len(ledger.failed) > f
            ),
            server,
            "acknowledged POSTs",
        )
        assert not ledger.errors and set(ledger.failed) == failed_before, (
            ledger.errors or ledger.failed
        )
        assert len(ledger.acked) >= target  # this round's server acknowledged writes
        time.sleep(rng.uniform(0.0, 0.05))
        killed_at = time.monotonic()
        assert sigkill(server), "the server had stopped before the kill"
        stop.set()
        for client in clients:
            client.join(timeout=STEP_TIMEOUT_S)
        assert not ledger.errors, ledger.errors
        cut_off += sum(
            1 for i in set(ledger.failed) - failed_before if ledger.started[i] < killed_at
        )

        integrity_check(db)
        with registry_at(db) as registry:
            stored = {r["id"]: r for r in registry.records(include_archived=True)}
            audit_entries = registry.audit_count()
        assert {i: stored.get(i) for i in seeded} == seeded
        for ident, body in ledger.acked.items():
            assert ident in stored, f"acknowledged agreement {ident} was lost"
            assert stored[ident] == body and as_sent(body) == ledger.sent[ident], ident
        for ident in set(stored) - set(seeded) - set(ledger.acked):  # in flight at the kill
            assert ident in ledger.sent and as_sent(stored[ident]) == ledger.sent[ident], ident
            unanswered_but_stored += 1
        assert audit_entries == len(stored), "an agreement without its audit entry, or vice versa"

    _, base = start_server(spawn, env)
    read_back(base, ledger.acked)
    assert ledger.acked, "no POST was acknowledged"
    # Not vacuous: some POSTs were on their way when the server died.
    assert cut_off > 0, "no POST was in flight at any kill"
    print(
        f"{KILLS} kills: {len(ledger.acked)} acknowledged, {cut_off} cut off by a kill, "
        f"{unanswered_but_stored} of those stored (committed, answer lost)"
    )


# --- 3. `critmin run` --------------------------------------------------------------------

RUN_DRAWS = 40  # ensemble draws per commodity (3 commodities): a run of about 4 s
TABLES = ("markets", "prices", "flows", "ensemble")
# atomic_path's temporary files: hidden, beside their target, ending in .tmp
TEMPORARY = re.compile(r"\.(?:(?:markets|prices|flows|ensemble)\.parquet|summary\.json)\..+\.tmp")


def write_study(path: Path, label: str, floor: float, seed: int) -> Path:
    """A study extending the ensemble example, with its own rare-earth floor and seed."""
    path.write_text(
        f"extends: {json.dumps(str(EXAMPLES / 'ministerial_2026_ensemble.yaml'))}\n"
        f"name: crash test {label}\n"
        f"ensemble: {{draws: {RUN_DRAWS}, seed: {seed}}}\n"
        f"policies: {{zone: {{floors: {{rare_earths: {floor}}}}}}}\n"
        f"outputs: [{', '.join(TABLES)}]\n",
        "utf-8",
    )
    return path


def results_in(out: Path) -> dict[str, Any]:
    """A result folder as a kill left it, checked: the visible files are result tables that
    read in full and a summary.json listing only files that are there; hidden files are
    only atomic_path's temporary files. Returns the summary, the tables and the leftovers."""
    if not out.exists():
        return {"summary": None, "frames": {}, "hidden": []}
    names = sorted(p.name for p in out.iterdir())
    hidden = [n for n in names if n.startswith(".")]
    visible = [n for n in names if not n.startswith(".")]
    assert all(TEMPORARY.fullmatch(n) for n in hidden), hidden
    assert set(visible) <= {f"{t}.parquet" for t in TABLES} | {"summary.json"}, visible
    frames = {}
    for name in visible:
        if name.endswith(".parquet"):
            try:
                frames[name.removesuffix(".parquet")] = pd.read_parquet(out / name)
            except Exception as exc:  # any reader error: the file is not whole
                pytest.fail(f"{name} left by the kill does not read: {exc}")
    summary = None
    if "summary.json" in visible:
        summary = json.loads((out / "summary.json").read_text("utf-8"))
        assert summary["files"], "summary.json lists no files"
        assert set(summary["files"]) <= set(visible), "summary.json lists a missing file"
    return {"summary": summary, "frames": frames, "hidden": hidden}


def run_to_end(spawn, env: dict[str, str], study: Path, out: Path) -> dict[str, Any]:
    proc = spawn(critmin("run", str(study), "--out", str(out), "--format", "json"), env)
    proc.wait(timeout=STEP_TIMEOUT_S)
    assert proc.returncode == 0, stderr_of(proc)
    done = results_in(out)
    assert done["summary"] is not None and sorted(done["summary"]["files"]) == sorted(
        f"{t}.parquet" for t in TABLES
    )
    return done


def test_run_killed_leaves_only_complete_and_consistent_results(tmp_path, spawn, rng):
    """SIGKILL of `critmin run` over the results of an earlier run, while it computes, while
    it writes a table, between two tables and at random: every visible file in the output
    folder is a whole Parquet table, temporary files are hidden (.NAME.*.tmp) and never
    listed, a summary.json is there only with every file it lists, and those files are the
    very tables of the run summary.json describes (no mix of two runs); a rerun to the same
    folder completes and writes summary.json."""
    env = crash_env(tmp_path, tmp_path / "registry.sqlite")
    out = tmp_path / "results"
    first = write_study(tmp_path / "first.yaml", "first", floor=1.3, seed=1)
    second = write_study(tmp_path / "second.yaml", "second", floor=1.5, seed=2)
    began = time.monotonic()
    done = run_to_end(spawn, env, first, out)
    full_s = time.monotonic() - began
    tables = {done["summary"]["provenance"]["scenario_hash"]: done["frames"]}

    points = ["computing", "mid_table", "between_tables"]
    points += [rng.choice([*points, "random"]) for _ in range(KILLS - len(points))]
    outcomes: list[dict[str, Any]] = []
    for point in points:
        before = {t: (out / f"{t}.parquet").stat().st_ino for t in TABLES}
        hidden_before = {n for n in os.listdir(out) if n.startswith(".")}

        def replaced(before: dict[str, int] = before) -> int:
            """How many tables the second run has renamed into place so far."""
            count = 0
            for table in TABLES:
                with contextlib.suppress(FileNotFoundError):
                    count += (out / f"{table}.parquet").stat().st_ino != before[table]
            return count

        proc = spawn(critmin("run", str(second), "--out", str(out), "--format", "json"), env)
        if point == "computing":  # start-up, calibration, solves: nothing written yet
            time.sleep(rng.uniform(0.2, 0.4 * full_s))
        elif point == "random":
            time.sleep(rng.uniform(0.0, full_s))
        elif point == "mid_table":  # a table half written under its temporary name
            wait_until(
                lambda h=hidden_before: any(
                    n not in h and TEMPORARY.fullmatch(n) for n in os.listdir(out)
                ),
                proc,
                "a temporary result file",
            )
        else:  # "between_tables": some tables replaced, the others not yet
            k = rng.randint(1, len(TABLES) - 1)
            wait_until(lambda k=k: replaced() >= k, proc, f"{k} tables replaced")
        killed = sigkill(proc)
        state = results_in(out)
        outcomes.append(
            {
                "point": point,
                "killed": killed,
                # the kill caught the second run's writing: some tables of each run on disk,
                # or a temporary file of its own left behind
                "caught_writing": 0 < replaced() < len(TABLES)
                or bool(set(state["hidden"]) - hidden_before),
                **state,
            }
        )
        if point == "computing":
            assert killed, "the run had ended before the kill"

    done = run_to_end(spawn, env, second, out)
    tables[done["summary"]["provenance"]["scenario_hash"]] = done["frames"]
    assert len(tables) == 2

    for outcome in outcomes:
        summary = outcome["summary"]
        if summary is None:
            continue
        described = tables[summary["provenance"]["scenario_hash"]]
        for name in summary["files"]:
            table = name.removesuffix(".parquet")
            assert outcome["frames"][table].equals(described[table]), (
                f"{outcome['point']}: summary.json describes another run than {name}"
            )
    # Not vacuous: a kill landed while the second run was writing its tables.
    assert any(o["killed"] and o["caught_writing"] for o in outcomes), [
        {k: o[k] for k in ("point", "killed", "caught_writing", "hidden")} for o in outcomes
    ]
    # The rerun swept the temporary files the killed runs left (their writers are gone).
    assert not done["hidden"], done["hidden"]


# --- 4. `critmin data import-baci` -------------------------------------------------------

BACI_PRODUCTS = 8  # HS6 codes per country pair: about 450,000 rows, 14 MB of CSV
# Temporary files in trade/: atomic_path's (hidden), and the one DuckDB's COPY writes first
# when its target exists (atomic_path has created it): tmp_ before atomic_path's name.
BACI_TEMPORARY = re.compile(r"(?:tmp_)?\.baci_HS17_[0-9a-f]{12}(?:_\d+)?\.parquet\..+\.tmp")
BACI_FILE = re.compile(r"baci_HS17_[0-9a-f]{12}(?:_\d+)?\.parquet")


def write_baci(path: Path, seed: int) -> Path:
    """A BACI-format file for 2022: every country pair (one BACI code per country) trading
    BACI_PRODUCTS products, values and quantities drawn from `seed`."""
    import numpy as np

    from critmin.data.resolve import all_countries

    codes = np.array(sorted({c.baci_codes[0] for c in all_countries() if c.baci_codes}))
    products = 10_000 + 7 * np.arange(BACI_PRODUCTS)
    exporter, importer, product = np.meshgrid(codes, codes, products, indexing="ij")
    pairs = exporter != importer
    draw = np.random.default_rng(seed)
    pd.DataFrame(
        {
            "t": 2022,
            "i": exporter[pairs],
            "j": importer[pairs],
            "k": product[pairs],
            "v": (draw.random(pairs.sum()) * 1000).round(3),
            "q": (draw.random(pairs.sum()) * 100).round(3),
        }
    ).to_csv(path, index=False)
    return path


def dataset_in(folder: Path) -> dict[str, Any]:
    """A user dataset folder as a kill left it, checked: the manifest (if any) reads, and
    every trade file it lists exists with the SHA-256 and the row count it records; other
    files in trade/ are only temporary files or unlisted Parquet files of an import that had
    not committed. Returns the trade entry, the temporary files and the unlisted ones."""
    import pyarrow.parquet as pq

    from critmin.data.io import sha256_file

    trade = folder / "trade"
    names = sorted(os.listdir(trade)) if trade.exists() else []
    entry = None
    if (folder / "manifest.json").exists():
        manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
        entry = manifest["tables"].get("trade")
    listed = []
    if entry is not None:
        listed = [i["file"] for i in entry["imports"]]
        assert entry["files"] == listed
        assert entry["rows"] == sum(i["rows"] for i in entry["imports"])
        for record in entry["imports"]:
            path = trade / record["file"]
            assert path.is_file(), f"the manifest lists {record['file']}, which is missing"
            assert sha256_file(path) == record["sha256"], (
                f"{record['file']} does not match the SHA-256 the manifest records"
            )
            assert pq.ParquetFile(path).metadata.num_rows == record["rows"]
    temporary = [n for n in names if BACI_TEMPORARY.fullmatch(n)]
    orphans = [n for n in names if n not in listed and n not in temporary]
    assert all(BACI_FILE.fullmatch(n) for n in orphans), orphans
    return {"entry": entry, "temporary": temporary, "orphans": orphans}


def test_baci_import_killed_keeps_the_manifest_true(tmp_path, spawn, rng):
    """SIGKILL of `critmin data import-baci --replace` while DuckDB streams the CSV into
    Parquet, right after the new file is renamed into place (before the manifest, the
    commit point, names it) and at random, on a new dataset and over an earlier import of
    the same file: the manifest always reads, and every file it lists exists with the
    SHA-256 and row count it records; a rerun completes and the dataset then reads."""
    data = tmp_path / "user-data"
    env = crash_env(tmp_path, tmp_path / "registry.sqlite")
    source = write_baci(tmp_path / "BACI_HS17_Y2022_crash.csv", seed=0)
    command = critmin("data", "import-baci", str(source), "--replace", "--format", "json")
    trade = data / "trade"

    def import_to_end() -> None:
        proc = spawn(command, env)
        proc.wait(timeout=STEP_TIMEOUT_S)
        assert proc.returncode == 0, stderr_of(proc)

    # The first two kills hit an import into a new dataset, the others one that replaces
    # an earlier import of a file of the same name (and new figures).
    points = ["streaming", "renamed", "streaming", "renamed"]
    points += [rng.choice([*points, "random"]) for _ in range(KILLS - 3)]
    outcomes: list[dict[str, Any]] = []
    full_s = 3.0
    for round_, point in enumerate(points):
        if round_ == 2:
            began = time.monotonic()
            import_to_end()
            full_s = time.monotonic() - began
            write_baci(source, seed=1)
        before = {n: os.stat(trade / n).st_ino for n in os.listdir(trade)} if round_ else {}

        def staged(before: dict[str, int] = before) -> bool:
            """A temporary file of this import is there (DuckDB streams into it)."""
            return trade.exists() and any(
                BACI_TEMPORARY.fullmatch(n) and n not in before for n in os.listdir(trade)
            )

        def renamed(before: dict[str, int] = before) -> bool:
            """This import's Parquet file is in place under its final name."""
            return trade.exists() and any(
                BACI_FILE.fullmatch(n) and os.stat(trade / n).st_ino != before.get(n)
                for n in os.listdir(trade)
            )

        proc = spawn(command, env)
        if point == "streaming":
            wait_until(staged, proc, "the staged Parquet file")
            time.sleep(rng.uniform(0.0, 0.05))
        elif point == "renamed":  # before the manifest, the commit point, names it
            wait_until(renamed, proc, "the new Parquet file")
        else:
            time.sleep(rng.uniform(0.0, full_s))
        killed = sigkill(proc)
        outcomes.append({"point": point, "killed": killed, **dataset_in(data)})
        if point != "random":
            assert killed, f"{point}: the import had ended before the kill"

    import_to_end()
    done = dataset_in(data)
    assert done["entry"] is not None and len(done["entry"]["imports"]) == 1
    listed = cli_json(env, "data", "list", "--format", "json")
    assert any(row["table"] == "trade" and str(data) in row["location"] for row in listed)
    assert not done["temporary"], done["temporary"]  # swept by the rerun
    print("unlisted Parquet files left in trade/ after the rerun:", done["orphans"])
