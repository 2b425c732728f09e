"""The bad-input corpus (tests/corpus/cases.yaml): every malformed input at every entry
point gives one clear line, a non-zero exit or a 4xx, no traceback, no output, and leaves
the stored data (dataset folder, registry) unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from critmin.cli.main import run
from critmin.registry.store import Registry
from critmin.registry.tokens import create_token
from critmin.web import create_app

CORPUS = Path(__file__).parent / "corpus"
CASES = yaml.safe_load((CORPUS / "cases.yaml").read_text(encoding="utf-8"))
COMMANDS = {
    "baci": ["data", "import-baci"],
    "registry": ["agreements", "import"],
    "scenarios": ["run"],
}


_MOU = {
    "id": "corpus-mou",
    "title": "Corpus MoU",
    "kind": "memorandum",
    "status": "signed",
    "parties": [{"party": "USA"}, {"party": "AUS"}],
}


def generate(kind: str, folder: Path) -> Path:
    """Oversized or deeply nested inputs, made at test time (kept out of the repository)."""
    names = {"junk_csv": "BACI_HS17_Y2025_junk.csv", "deep_yaml": "deep.yaml"}
    path = folder / names.get(kind, f"{kind}.json")
    if kind == "junk_csv":  # 3 MB of one very long line after a valid header
        path.write_bytes(b"t,i,j,k,v,q\n" + b"2025," + b"9" * 3_000_000 + b"\n")
    elif kind == "deep_json":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "big_json":  # 2 MB: over the web limit; 20,000 invalid records for imports
        record = {
            "id": "X",
            "title": "",
            "kind": "?",
            "status": "?",
            "parties": [],
            "pad": "x" * 60,
        }
        path.write_text(json.dumps([record] * 20_000))
    elif kind == "deep_yaml":
        path.write_text("name: deep\ncommodities: " + "[" * 20_000 + "]" * 20_000 + "\n")
    elif kind == "long_notes":  # 20 MB of notes: under the import's byte bound, over notes'
        path.write_text(json.dumps([{**_MOU, "notes": "n" * 20_000_001}]))
    elif kind == "fifo_json":  # opening a FIFO waits for a writer for ever
        path = folder / "fifo.json"
        os.mkfifo(path)
    elif kind == "fifo_extends":
        os.mkfifo(folder / "parent.yaml")
        path = folder / "child.yaml"
        path.write_text("name: child\nextends: parent.yaml\n")
    elif kind == "big_yaml":
        path = folder / "big.yaml"
        path.write_text("name: big\ncommodities: [rare_earths]\ndescription: " + "x" * 3_000_000)
    return path


def stored_state(folder: Path) -> tuple[dict[str, str], str]:
    """Hashes of the user's dataset folder and the registry's records: what a failed
    command must leave exactly as it found it."""
    files = {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        # The registry is compared by its records: SQLite checkpoints its journal into the
        # file whenever it likes, changing the bytes but not the data.
        if p.is_file() and not p.name.startswith("registry.sqlite")
    }
    records = json.dumps(Registry().records(), sort_keys=True, default=str)
    return files, hashlib.sha256(records.encode()).hexdigest()


def _cli_cases():
    for entry, command in COMMANDS.items():
        for case in CASES[entry]:
            yield pytest.param(entry, case, command, id=case["id"])
    for case in CASES["cli"]:
        yield pytest.param("cli", case, [], id=case["id"])


@pytest.mark.parametrize(("entry", "case", "command"), list(_cli_cases()))
def test_bad_input_on_the_command_line(entry, case, command, tmp_path, capsys, isolated_user_data):
    Registry().records()  # the registry exists (seeded) before the state is taken
    before = stored_state(isolated_user_data)
    out = tmp_path / "out"
    if "args" in case:
        argv = [
            a.replace("{corpus}", str(CORPUS)).replace("{actor100k}", "x" * 100_000)
            for a in case["args"]
        ]
    else:
        path = generate(case["generate"], tmp_path) if "generate" in case else CORPUS / case["file"]
        argv = [*case.get("command", command), str(path)]
        if entry == "scenarios":
            argv += ["--out", str(out)]
    code = run(argv)  # an unexpected exception would escape here and fail the test
    captured = capsys.readouterr()
    said = " ".join((captured.err + captured.out).split())
    assert code != 0, f"exit 0 for {argv}: {said}"
    assert "Traceback" not in said
    assert case["message"].replace("{corpus}", str(CORPUS)) in said, said
    assert not out.exists()
    assert stored_state(isolated_user_data) == before


@pytest.fixture
def client():
    app = create_app(read_token_required=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("case", CASES["api"], ids=[c["id"] for c in CASES["api"]])
def test_bad_input_to_the_api(case, client, tmp_path, isolated_user_data):
    Registry().records()
    before = stored_state(isolated_user_data)
    headers = {"content-type": "application/yaml" if case.get("yaml") else "application/json"}
    if case.get("token"):
        headers["authorization"] = f"Bearer {create_token(Registry(), 'corpus')}"
        before = stored_state(isolated_user_data)  # the token row is not the case's
    path = case["path"].replace("{long}", "X" * 5000)
    if case["method"] == "get":
        response = client.get(path, headers=headers)
    else:
        source = generate(case["generate"], tmp_path) if "generate" in case else None
        body = (source or CORPUS / case["file"]).read_bytes()
        response = client.post(path, content=body, headers=headers)
    assert response.status_code == case["status"], response.text
    error = response.json()["error"]
    assert case["message"] in error and "Traceback" not in error
    assert stored_state(isolated_user_data) == before
    assert client.get("/api/runs").json() == []  # nothing was queued


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "import-baci", str(CORPUS / "baci" / "BACI_HS17_Y2025_binary.csv")],
        ["agreements", "import", str(CORPUS / "registry" / "truncated.json")],
        ["run", str(CORPUS / "scenarios" / "billion_laughs.yaml"), "--out", "{out}"],
        ["shock", "--exporter", "CHN", "--commodity", "REE", "--quota", "nan"],
    ],
    ids=["baci", "registry", "scenario", "argument"],
)
def test_a_real_process_exits_non_zero_without_a_traceback(argv, tmp_path):
    argv = [a.replace("{out}", str(tmp_path / "out")) for a in argv]
    done = subprocess.run(
        [sys.executable, "-m", "critmin", *argv], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.strip().startswith("error:") and done.stderr.strip().count("\n") == 0
    assert not (tmp_path / "out").exists()
