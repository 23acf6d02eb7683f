"""Peak memory of ``quorum ask --json`` on one huge answer, against the same command on a tiny one.

    .venv/bin/python bench/answer_cap.py                     # a 50 MB answer, default cap
    .venv/bin/python bench/answer_cap.py --cap 100000000     # the same answer kept whole
    .venv/bin/python bench/answer_cap.py --repo /tmp/older   # another checkout's CLI

The answer streams from a `tests.loopback.LoopbackServer` in this process (its memory is not
measured) in ``--piece``-character tokens. Each run is a fresh ``quorum ask --json`` subprocess
with history on (a temporary data dir); its peak RSS comes from ``wait4``. Reported: the peak
above the tiny answer's run (the CLI's own footprint, measured in the same run) as a ratio to
the answer's size, the characters printed in ``--json`` and those stored in history.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # also runnable as `python bench/answer_cap.py`

from tests.loopback import LoopbackServer, openai_stream  # noqa: E402

MB = 1_000_000
CLI = (sys.executable, "-m", "core.cli", "ask")


def run_cli(
    repo: Path, config: Path, home: Path, out: Path, model: str, extra: list[str]
) -> tuple[int, int, dict[str, object]]:
    """(exit code, peak RSS in bytes, this model's --json response)."""
    env = {**os.environ, "QUORUM_HOME": str(home), "NO_PROXY": "127.0.0.1"}
    env["PYTHONPATH"] = str(repo)
    with out.open("w", encoding="utf-8") as stdout:
        process = subprocess.Popen(
            [*CLI, "--config", str(config), "--json", *extra, "-m", model, "say it"],
            cwd=repo,
            env=env,
            stdout=stdout,
            stderr=subprocess.PIPE,
        )
        assert process.stderr is not None
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):
        raise SystemExit(f"quorum ask failed ({process.returncode}): {stderr.decode()[-2000:]}")
    body = json.loads(out.read_text(encoding="utf-8"))
    response = next(r for r in body["responses"] if r["model"] == model)
    return process.returncode, usage.ru_maxrss * 1024, response


def stored_chars(home: Path, model: str) -> int:
    databases = list(home.rglob("history.sqlite3"))
    if not databases:
        return -1
    with sqlite3.connect(databases[0]) as conn:
        row = conn.execute(
            "SELECT length(text) + length(reasoning) FROM responses WHERE model = ? "
            "ORDER BY id DESC LIMIT 1",
            (model,),
        ).fetchone()
    return int(row[0]) if row else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="answer size in MB (characters)")
    parser.add_argument("--piece", type=int, default=256, help="characters per streamed token")
    parser.add_argument("--cap", type=int, help="max_answer_chars (default: Quorum's)")
    parser.add_argument("--repo", type=Path, default=ROOT, help="the checkout whose CLI runs")
    parser.add_argument(
        "--no-history", action="store_true", help="run `quorum ask --no-history` (both runs)"
    )
    args = parser.parse_args()

    size = int(args.mb * MB)
    pieces = size // args.piece
    token = ("lorem ipsum " * (args.piece // 12 + 1))[: args.piece]
    with LoopbackServer() as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server.script("big", openai_stream([token] * pieces, usage=(3, pieces)))
        server.script("tiny", openai_stream(["four"], usage=(3, 1)))
        cap = f"max_answer_chars = {args.cap}\n" if args.cap is not None else ""
        models = "".join(
            f'[[models]]\nname = "{name}"\nprovider = "openai"\nmodel = "{name}"\n'
            f'base_url = "{server.url}/v1"\napi_key_env = ""\nmax_retries = 0\n'
            for name in ("big", "tiny")
        )
        config = work / "config.toml"
        config.write_text(("[limits]\n" + cap if cap else "") + models, encoding="utf-8")
        out = work / "out.json"
        extra = ["--no-history"] if args.no_history else []
        _, floor, _ = run_cli(args.repo, config, work / "home-tiny", out, "tiny", extra)
        code, peak, response = run_cli(args.repo, config, work / "home-big", out, "big", extra)
        kept = stored_chars(work / "home-big", "big")
        text = str(response.get("text") or "")

    print(f"checkout           {args.repo}")
    print(f"answer             {pieces * args.piece:,} characters in {pieces:,} tokens")
    print(f"max_answer_chars   {args.cap if args.cap is not None else '(default)'}")
    print(f"exit code          {code}; finish_reason {response.get('finish_reason')!r}")
    print(f"--json text        {len(text):,} characters; error {response.get('error')!r}")
    print(f"history stored     {kept:,} characters")
    print(f"peak RSS, tiny     {floor / MB:.1f} MB (the CLI's own footprint)")
    print(f"peak RSS, big      {peak / MB:.1f} MB")
    answer = pieces * args.piece
    print(f"(big - tiny) / answer size   {(peak - floor) / answer:.2f}x")
    print(f"big / answer size            {peak / answer:.2f}x")
    if len(text) < answer:
        print(f"(big - tiny) / kept size     {(peak - floor) / max(1, len(text)):.2f}x")


if __name__ == "__main__":
    main()
