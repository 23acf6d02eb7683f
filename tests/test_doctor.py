"""``quorum doctor`` through the real console script, on real parts: a loopback endpoint that
answers, one that echoes the key back in a 401, a refused port, a key variable set (its value
never in the output, checked byte by byte) or unset, GGUF files missing, not GGUF or cut short
(the real SmolLM2 file, truncated), a data directory others can read or that is no directory, a
damaged knowledge base, a config that does not load. Exit 0 when nothing is broken (warnings
allowed), 1 when something is; never a traceback."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core import paths
from core.providers.local import resolve_model_path
from tests.conftest import ConfigWriter, closed_port
from tests.loopback import LoopbackServer, error_reply
from tests.test_cli import QUORUM, model, model_lists

KEY_VAR = "QUORUM_DOCTOR_KEY"
FIX = "        fix: "
OFF = {"name": "off", "provider": "openai", "model": "gpt-4o", "enabled": False}


def unique_secret() -> str:
    return f"sk-doctor-{secrets.token_hex(16)}"


def doctor(*args: str, secret: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    """``quorum doctor ARGS`` with ``$QUORUM_DOCTOR_KEY`` set to the secret; its output, as bytes,
    holds neither the secret nor a part of it, and no traceback."""
    done = subprocess.run(
        [*QUORUM, "doctor", *args],
        capture_output=True,
        timeout=120,
        env={**os.environ, KEY_VAR: secret, **env},
        check=False,
    )
    assert b"Traceback" not in done.stderr, done.stderr
    for output in (done.stdout, done.stderr):
        assert secret.encode() not in output
        assert secret[-16:].encode() not in output  # not even its tail
    return done


def findings(stdout: bytes) -> list[tuple[str, str, str]]:
    """The text output as (level, detail, fix) triples, in order."""
    found: list[tuple[str, str, str]] = []
    for line in stdout.decode().splitlines():
        if line.startswith(FIX):
            level, detail, _ = found[-1]
            found[-1] = (level, detail, line.removeprefix(FIX))
        elif line.startswith("  "):
            level, _, detail = line.strip().partition("  ")
            found.append((level, detail.strip(), ""))
    return found


def about(found: list[tuple[str, str, str]], start: str) -> tuple[str, str, str]:
    (match,) = [f for f in found if f[1].startswith(start)]
    return match


def doctor_json(config: Path | None, secret: str, **env: str) -> tuple[int, dict[str, Any]]:
    named = ["--config", str(config)] if config is not None else []
    done = doctor("--json", *named, secret=secret, **env)
    assert done.stderr == b""
    return done.returncode, json.loads(done.stdout)


def keyed(server: LoopbackServer, provider: str, name: str, **extra: Any) -> dict[str, Any]:
    return model(server, provider, name, api_key_env=KEY_VAR, **extra)


def literal_key(values: dict[str, Any], key: str) -> dict[str, Any]:
    """The model's key written into the config file (``api_key``), not named by a variable."""
    return {**{k: v for k, v in values.items() if k != "api_key_env"}, "api_key": key}


@pytest.mark.local_model  # the bundled SmolLM2 file, opened (and a truncated copy of it)
def test_every_problem_is_named_with_its_fix_and_no_key_is_shown(
    loopback: LoopbackServer,
    write_config: ConfigWriter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = unique_secret()
    monkeypatch.delenv("QUORUM_DOCTOR_UNSET_KEY", raising=False)
    echo = {"error": {"type": "authentication_error", "message": f"invalid x-api-key {secret}"}}
    loopback.fallback = model_lists(
        {
            "/v1/models": error_reply(200, {"data": [{"id": "gpt"}]}),
            "/anthropic/v1/models": error_reply(401, {"type": "error", **echo}),
        }
    )
    port = closed_port()
    not_gguf = tmp_path / "weights.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 a zip file, renamed")
    cut = tmp_path / "cut.gguf"  # a download cut short: the header is there, the tensors not
    with resolve_model_path("smollm2-135m").open("rb") as real:
        cut.write_bytes(real.read(8_000_000))
    config = write_config(
        models=[
            keyed(loopback, "openai", "gpt"),
            keyed(loopback, "anthropic", "claude", base_url=f"{loopback.url}/anthropic"),
            model(loopback, "ollama", "gone", base_url=f"http://127.0.0.1:{port}"),
            model(loopback, "gemini", "gem", api_key_env="QUORUM_DOCTOR_UNSET_KEY"),
            {"name": "tiny", "provider": "local", "model": str(tmp_path / "missing.gguf")},
            {"name": "zip", "provider": "local", "model": str(not_gguf)},
            {"name": "dir", "provider": "local", "model": str(tmp_path)},
            {"name": "cut", "provider": "local", "model": str(cut)},
            {"name": "smol", "provider": "local", "model": "smollm2-135m"},
        ]
    )
    home = paths.data_dir()
    home.mkdir(parents=True)
    home.chmod(0o755)  # made by hand, or by an older Quorum
    (home / "notes.txt").write_text("old export")
    (home / "notes.txt").chmod(0o644)

    done = doctor("--config", str(config), secret=secret)

    assert done.returncode == 1, done.stdout
    assert done.stderr == b""
    found = findings(done.stdout)
    assert about(found, "gpt: $") == ("ok", f"gpt: ${KEY_VAR} is set", "")
    level, detail, _ = about(found, f"gpt: {loopback.url}/v1 answers")
    assert level == "ok" and "HTTP 200" in detail and " ms)" in detail
    probes = {r.path: r for r in loopback.requests}  # the real requests, with the key given
    assert set(probes) == {"/v1/models", "/anthropic/v1/models"}
    assert probes["/v1/models"].headers["authorization"] == f"Bearer {secret}"
    assert about(found, "claude: HTTP 401") == (
        "FAIL",
        "claude: HTTP 401: authentication_error: invalid x-api-key [redacted]",
        f"the server refused the key: check ${KEY_VAR}",
    )
    assert about(found, "gone: unreachable") == (
        "FAIL",
        f"gone: unreachable: cannot reach 127.0.0.1:{port}: connection refused (nothing is "
        "listening there: is the server running, and on that port?)",
        f'start the server, or correct base_url = "http://127.0.0.1:{port}" for gone in {config}',
    )
    assert about(found, "gem: $") == (
        "FAIL",
        "gem: $QUORUM_DOCTOR_UNSET_KEY is not set: gem fails without its key",
        "export QUORUM_DOCTOR_UNSET_KEY=<your key> (or enabled = false for gem)",
    )
    assert loopback.requests_for("gem") == []  # not probed without its key

    # local files, in the words the provider itself would fail with (core.providers.gguf)
    level, detail, fix = about(found, "tiny: ")
    assert (level, detail) == ("FAIL", f"tiny: model file not found: {tmp_path / 'missing.gguf'}")
    assert fix == 'put the file there, or set model = "<path to a .gguf file>" for tiny'
    assert about(found, "zip: ") == (
        "FAIL",
        f"zip: {not_gguf} is not a GGUF model file (it starts with b'PK\\x03\\x04'; llama.cpp "
        "reads GGUF only)",
        "download weights.gguf again (llama.cpp reads GGUF files only)",
    )
    assert about(found, "dir: ") == (
        "FAIL",
        f"dir: {tmp_path} is a directory, not a model file",
        'set model = "<path to a .gguf file>" for dir',
    )
    level, detail, fix = about(found, "cut: ")
    assert level == "FAIL", detail
    assert detail.startswith(f"cut: cannot load model file {cut} (8.0 MB): it may be truncated")
    assert fix == "download cut.gguf again, or update llama.cpp (pip install -U llama-cpp-python)"
    level, detail = about(found, "smol: ")[:2]
    assert level == "ok" and detail.endswith(".gguf (98 MB, GGUF; llama.cpp opens it)"), detail

    assert about(found, f"{home} is 0755") == (
        "warn",
        f"{home} is 0755: other users can look into your history (0700 expected)",
        f"chmod 700 {home} (any other quorum command tightens it too)",
    )
    level, detail, fix = about(found, "1 of 1 files there are readable by others")
    assert level == "warn" and str(home / "notes.txt") in detail
    assert fix == f"chmod -R go-rwx {home}"
    assert stat.S_IMODE(home.stat().st_mode) == 0o755  # reported, not repaired
    assert all(fix for level, _, fix in found if level != "ok")
    assert done.stdout.decode().splitlines()[-1] == "7 broken, 2 warnings"

    # following the fixes the doctor gave clears the data directory's warnings
    os.chmod(home, 0o700)
    os.chmod(home / "notes.txt", 0o600)
    _, report = doctor_json(config, secret)
    data = [c for c in report["checks"] if c["section"] == "data"]
    assert [c["state"] for c in data] == ["ok", "ok"], data


def test_a_healthy_setup_exits_0_with_its_warnings_and_json_lists_every_check(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    secret = unique_secret()
    loopback.fallback = model_lists(
        {
            "/v1/models": error_reply(200, {"data": []}),
            "/api/tags": error_reply(200, {"models": []}),
        }
    )
    # a literal key in a file others can read, and an optional key that is not set: warnings
    config = write_config(
        models=[
            literal_key(model(loopback, "openai", "gpt"), secret),
            model(loopback, "ollama", "llama", api_key_env="QUORUM_DOCTOR_OPTIONAL_KEY"),
            keyed(loopback, "openai", "judge", enabled=False),  # only synthesizes: checked
            {**OFF, "name": "spare"},  # never asked: not checked
        ],
        consensus={"synthesizer": "judge"},
    )
    config.chmod(0o644)

    code, report = doctor_json(config, secret)

    assert code == 0, report
    assert set(report) == {"ok", "failed", "warnings", "checks"}
    assert (report["ok"], report["failed"], report["warnings"]) == (True, 0, 2)
    for check in report["checks"]:
        assert set(check) == {"section", "state", "detail", "fix"}
        assert check["state"] in {"ok", "warn"}
        assert (check["fix"] == "") == (check["state"] == "ok"), check
    sections = [c["section"] for c in report["checks"]]
    assert list(dict.fromkeys(sections)) == ["install", "config", "data", "models", "store"]
    by_detail = {c["detail"]: c for c in report["checks"]}
    assert f"{config} (given with --config): 4 models, 2 enabled" in by_detail
    exposed = by_detail[f"{config} holds an API key and other users can read it"]
    assert exposed["state"] == "warn" and exposed["fix"].startswith(f"chmod 600 {config}")
    assert by_detail["gpt: key in the config file (api_key)"]["state"] == "ok"
    optional = by_detail["llama: $QUORUM_DOCTOR_OPTIONAL_KEY is not set: asked without a key"]
    assert optional["state"] == "warn"
    assert any(d.startswith(f"llama: {loopback.url} answers (HTTP 200") for d in by_detail)
    assert by_detail[f"judge: ${KEY_VAR} is set"]["state"] == "ok"
    assert any(d.startswith(f"judge: {loopback.url}/v1 answers (HTTP 200") for d in by_detail)
    assert "spare: disabled, not checked" in by_detail
    versions = [c["detail"] for c in report["checks"] if c["section"] == "install"]
    assert versions[0].startswith(f"Python {sys.version_info.major}.{sys.version_info.minor}.")
    for package in ("quorum-tui", "textual", "httpx", "anyio", "chromadb", "onnxruntime"):
        assert any(v.startswith(f"{package} ") for v in versions), versions
    store = [c["detail"] for c in report["checks"] if c["section"] == "store"]
    assert store[0].endswith("no knowledge base yet (`quorum ingest PATH` makes one)")
    assert [d.split(":")[0] for d in store[1:3]] == [
        "embedder model.onnx",
        "embedder tokenizer.json",
    ]
    assert all(d.endswith("(SHA-256 verified)") for d in store[1:3])
    assert store[3].startswith("embedder builtin:all-MiniLM-L6-v2-int8: embeds (384 dimensions")

    text = doctor("--config", str(config), secret=secret)
    assert text.returncode == 0
    assert text.stdout.decode().splitlines()[-1] == "nothing broken, 2 warnings"


def test_a_damaged_knowledge_base_is_broken(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.fallback = model_lists({"/v1/models": error_reply(200, {"data": []})})
    config = write_config(models=[keyed(loopback, "openai", "gpt")])
    store = paths.data_dir() / "store"
    store.mkdir(parents=True)
    (store / "catalog.sqlite3").write_bytes(b"not a database at all" * 100)

    code, report = doctor_json(config, unique_secret())

    assert code == 1
    (broken,) = [c for c in report["checks"] if c["state"] == "fail"]
    assert broken["section"] == "store"
    assert "catalog.sqlite3" in broken["detail"] and "not a database" in broken["detail"]
    assert broken["fix"] == f"quorum kb rebuild (or move {store} aside and ingest again)"


def test_a_config_that_does_not_load_is_broken_and_the_rest_still_reported(
    write_config: ConfigWriter, tmp_path: Path
) -> None:
    secret = unique_secret()
    config = write_config("[[models]\nname = ")

    done = doctor("--config", str(config), secret=secret)

    assert done.returncode == 1 and done.stderr == b""
    found = findings(done.stdout)
    level, detail, fix = about(found, f"{config}: invalid TOML")
    assert level == "FAIL" and detail.endswith("(given with --config)")
    assert fix == f"edit {config}; the bundled {paths.bundled_config_path()} documents every key"
    assert found[0][1].startswith("Python 3.")  # the installation is still reported
    assert "data" in done.stdout.decode().splitlines()

    missing = tmp_path / "nowhere.toml"
    code, report = doctor_json(None, secret, QUORUM_CONFIG=str(missing))
    (broken,) = [c for c in report["checks"] if c["state"] == "fail"]
    assert code == 1 and broken["section"] == "config"
    assert str(missing) in broken["detail"] and "named by $QUORUM_CONFIG" in broken["detail"]
    assert broken["fix"] == "point QUORUM_CONFIG at your config file, or unset it"


def test_a_data_directory_that_is_a_file_is_broken(write_config: ConfigWriter) -> None:
    home = paths.data_dir()
    home.parent.mkdir(parents=True, exist_ok=True)
    home.write_text("not a directory")
    config = write_config(models=[OFF])

    code, report = doctor_json(config, unique_secret())

    assert code == 1
    (broken,) = [c for c in report["checks"] if c["state"] == "fail"]
    assert broken == {
        "section": "data",
        "state": "fail",
        "detail": f"{home} is not a directory",
        "fix": "move it aside, or set QUORUM_HOME to a directory",
    }


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root may write anywhere")
def test_a_data_directory_you_cannot_write_is_broken(write_config: ConfigWriter) -> None:
    home = paths.data_dir()
    home.mkdir(parents=True)
    home.chmod(0o500)
    config = write_config(models=[OFF])
    try:
        code, report = doctor_json(config, unique_secret())
    finally:
        home.chmod(0o700)

    assert code == 1
    (broken,) = [c for c in report["checks"] if c["state"] == "fail"]
    assert broken["detail"] == f"{home} is not writable by you: history cannot be kept"
    assert broken["fix"] == f"chmod u+rwx {home} (or chown it to your user)"


def test_the_checks_import_nothing_heavy_until_they_run() -> None:
    code = (
        "import sys, core.cli, core.doctor.checks, core.doctor.models\n"
        "print([m for m in ('chromadb', 'onnxruntime', 'llama_cpp') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "[]\n"
