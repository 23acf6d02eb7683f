"""Consensus through the real `quorum ask` against the loopback server: figures in --json,
consensus events in --jsonl, a failing synthesizer and its fallback, --no-synthesis, the turn's
consensus in history and exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.consensus.records import MEASURING
from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, error_reply, openai_stream
from tests.test_cli import model, quorum

PARIS_A = "The capital of France is Paris. It has been the seat of government for centuries."
PARIS_B = "Paris is France's capital city. The government has been seated there for centuries."
GIT = "To undo the last git commit, run git reset --soft HEAD~1; your changes stay staged."
SYNTHESIS = "Paris is the capital of France.\n\n## Disagreements\n\nNone."


def council(loopback: LoopbackServer, write_config: ConfigWriter, **tables: Any) -> Path:
    loopback.script("a", openai_stream([PARIS_A]))
    loopback.script("b", openai_stream([PARIS_B]))
    loopback.script("odd", openai_stream([GIT]))
    loopback.script("judge", openai_stream([SYNTHESIS]))
    models = [
        model(loopback, "openai", "a"),
        model(loopback, "openai", "b"),
        model(loopback, "openai", "odd"),
        model(loopback, "openai", "broken"),
        model(loopback, "openai", "judge", enabled=False),
        model(loopback, "openai", "spare", enabled=False),
    ]
    return write_config(models=models, **tables)


def ask_json(config: Path, *extra: str) -> dict[str, Any]:
    done = quorum("ask", "Capital of France?", "--json", "--config", str(config), *extra)
    assert done.returncode == 0, done.stderr
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def test_json_has_the_figures_and_the_synthesis(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("broken", error_reply(500, {"error": {"message": "down"}}))
    config = council(loopback, write_config, consensus={"synthesizer": "judge"})
    body = ask_json(config, "--model", "a", "--model", "b", "--model", "odd", "--model", "broken")
    c = body["consensus"]
    assert [r["model"] for r in body["responses"]] == ["a", "b", "odd", "broken"]
    assert c["medoid"] in ("a", "b") and c["outliers"] == ["odd"]
    assert 0 < c["agreement"] < 1
    assert len(c["similarity"]) == 4 and c["similarity"][3] == [None] * 4
    assert c["similarity"][0][1] == c["similarity"][1][0] > c["similarity"][0][2]
    assert c["missing"] == [{"model": "broken", "state": "failed"}]
    assert c["support"] and all("count" in s and "models" in s for s in c["support"])
    assert c["synthesis"] == SYNTHESIS and c["synthesizer"] == "judge"
    assert c["synthesis_error"] is None
    (request,) = loopback.requests_for("judge")
    sent = json.dumps(request.json)
    assert all(name not in sent for name in ('"a"', '"odd"', "broken")), "answers anonymised"
    assert "git reset" in sent and "Disagreements" in sent


def test_a_failing_synthesizer_falls_back_and_says_why(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    config = council(
        loopback, write_config, consensus={"synthesizer": "broken", "fallback": ["judge"]}
    )
    loopback.script("broken", error_reply(503, {"error": {"message": "overloaded"}}))
    c = ask_json(config, "--model", "a", "--model", "b")["consensus"]
    assert c["synthesizer"] == "judge" and c["synthesis"] == SYNTHESIS
    assert c["synthesis_error"] == "broken: HTTP 503: overloaded"
    text = quorum("ask", "Capital of France?", "--config", str(config), "-m", "a", "-m", "b")
    assert "synthesis by judge" in text.stdout and "(after: broken: HTTP 503" in text.stdout


def test_when_every_synthesizer_fails_the_medoid_is_named(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    config = council(loopback, write_config, consensus={"synthesizer": "broken"})
    loopback.script("broken", error_reply(500, {"error": {"message": "down"}}))
    done = quorum("ask", "Capital of France?", "--config", str(config), "-m", "a", "-m", "b")
    assert done.returncode == 0
    assert "no synthesis: broken: HTTP 500: down; the most representative answer is" in done.stdout
    body = ask_json(config, "-m", "a", "-m", "b")["consensus"]
    assert body["synthesis"] is None and body["synthesis_error"] == "broken: HTTP 500: down"


def test_no_synthesis_and_a_single_model(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    config = council(loopback, write_config, consensus={"synthesizer": "judge"})
    c = ask_json(config, "-m", "a", "-m", "b", "--no-synthesis")["consensus"]
    assert c["agreement"] is not None and c["synthesis"] is None and c["synthesizer"] is None
    assert loopback.requests_for("judge") == []
    one = ask_json(config, "-m", "a")["consensus"]
    assert one["agreement"] is None and one["similarity"] is None
    assert one["reason"] == "one model was asked: agreement needs at least two answers"


def test_jsonl_streams_consensus_updates_before_the_end(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    config = council(loopback, write_config, consensus={"synthesizer": "judge"})
    done = quorum("ask", "q", "--jsonl", "--config", str(config), "-m", "a", "-m", "b")
    events = [json.loads(line) for line in done.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types[-1] == "fanout_finished"
    assert types.index("consensus") < types.index("synthesis")
    updates = [e for e in events if e["type"] == "consensus"]
    assert updates[0]["reason"] == MEASURING  # an answer is in, its embedding not yet
    measured = [u for u in updates if u["reason"] != MEASURING]
    assert len(measured) == 2 and measured[-1]["agreement"] is not None
    assert measured[0]["agreement"] is None and "one answer so far" in measured[0]["reason"]


def test_the_turn_keeps_its_consensus_in_history_and_exports(
    loopback: LoopbackServer, write_config: ConfigWriter, tmp_path: Path
) -> None:
    config = council(loopback, write_config, consensus={"synthesizer": "judge"})
    body = ask_json(config, "-m", "a", "-m", "odd")
    session = body["session_id"]
    exported = quorum("export", session, "--format", "json", "--config", str(config))
    turn = json.loads(exported.stdout)["session"]["turns"][0]
    assert turn["consensus"]["synthesis"] == SYNTHESIS
    assert turn["consensus"]["agreement"] == body["consensus"]["agreement"]
    markdown = quorum("export", session, "--format", "md", "--config", str(config)).stdout
    agreement = body["consensus"]["agreement"]
    assert f"**Agreement {agreement:.2f}** (how alike the answers are" in markdown
    assert "| | a | odd |" in markdown and "#### Synthesis by judge" in markdown
    assert "Paris is the capital of France." in markdown
    page = quorum("export", session, "--format", "html", "--config", str(config)).stdout
    assert "Synthesis by judge" in page and "<table>" in page

    saved = tmp_path / "session.json"
    saved.write_text(exported.stdout, encoding="utf-8")
    imported = quorum("import", str(saved), "--config", str(config))
    assert imported.returncode == 0, imported.stderr
    copy = imported.stdout.split()[-1]  # the id is taken: the copy gets a new one
    assert copy != session
    again = quorum("export", copy, "--format", "json", "--config", str(config))
    assert json.loads(again.stdout)["session"]["turns"][0]["consensus"] == turn["consensus"]


def test_follow_up_synthesis_continues_every_model_from_the_synthesis(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    for follow_up, expected in (("synthesis", SYNTHESIS), ("own", PARIS_A)):
        loopback.requests.clear()
        config = council(
            loopback,
            write_config,
            consensus={"synthesizer": "judge"},
            history={"follow_up": follow_up},
        )
        ask_json(config, "-m", "a", "-m", "b")
        ask_json(config, "-m", "a", "-m", "b", "--continue")
        _, second = loopback.requests_for("a")
        earlier = [m for m in second.json["messages"] if m["role"] == "assistant"]
        assert [m["content"] for m in earlier] == [expected], follow_up
