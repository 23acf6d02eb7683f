"""Consensus figures from the real built-in embedder, on answers whose agreement is known by
construction: paraphrases of one answer, unrelated text, a contradiction, a changed figure."""

from __future__ import annotations

import pytest

from core.consensus.records import Consensus
from core.consensus.sentences import split_sentences
from core.consensus.tracker import ConsensusTracker
from core.store.embedder import BuiltinEmbedder

PARIS = [
    "The capital of France is Paris. It has been the seat of government for centuries.",
    "Paris is France's capital city. The government has been seated there for centuries.",
    "France's capital is **Paris**. For centuries the seat of government has been there.",
]
LYON = "The capital of France is Lyon. It became the capital after the revolution."
GIT = "To undo the last git commit, run git reset --soft HEAD~1; your changes stay staged."


@pytest.fixture(scope="module")
def embedder() -> BuiltinEmbedder:
    return BuiltinEmbedder()


def run(embedder: BuiltinEmbedder, answers: dict[str, str | None]) -> Consensus:
    """Feed answers in order; ``None`` is a model that failed."""
    tracker = ConsensusTracker(embedder, list(answers))
    for model, text in answers.items():
        if text is None:
            tracker.drop(model, "failed")
        else:
            tracker.add(model, text)
    return tracker.current


def test_paraphrases_agree_and_support_every_sentence(embedder: BuiltinEmbedder) -> None:
    result = run(embedder, dict(zip(["a", "b", "c"], PARIS, strict=True)))
    assert result.agreement is not None and result.agreement > 0.75
    assert result.outliers == ()
    assert result.medoid in ("a", "b", "c")
    assert result.support and all(s.count == 2 for s in result.support)
    assert result.unique == ()


def test_an_unrelated_answer_is_the_outlier_even_among_three(embedder: BuiltinEmbedder) -> None:
    result = run(embedder, {"a": PARIS[0], "off": GIT, "b": PARIS[1]})
    assert result.outliers == ("off",)
    assert result.medoid in ("a", "b")
    together = run(embedder, dict(zip(["a", "b", "c"], PARIS, strict=True)))
    assert result.agreement is not None and together.agreement is not None
    assert result.agreement < together.agreement - 0.3
    assert {c.model for c in result.unique} == {"off"}, "only the unrelated answer is alone"


def test_a_contradiction_is_not_support_and_is_listed_as_its_models_own(
    embedder: BuiltinEmbedder,
) -> None:
    result = run(embedder, {"a": PARIS[0], "b": PARIS[1], "lyon": LYON})
    assert result.medoid in ("a", "b")
    first = result.support[0]  # "… capital … is Paris."
    assert "Paris" in first.text
    assert "lyon" not in first.models and len(first.models) == 1
    assert any(c.model == "lyon" and "Lyon" in c.text for c in result.unique)


def test_a_changed_figure_never_supports_the_original(embedder: BuiltinEmbedder) -> None:
    result = run(
        embedder,
        {
            "a": "Water boils at 100 degrees Celsius at sea level.",
            "b": "At sea level water boils at 100 degrees Celsius.",
            "c": "Water boils at 90 degrees Celsius at sea level.",
        },
    )
    supporters = {s.text: s.models for s in result.support}
    assert all("c" not in models for models in supporters.values())
    assert any(c.model == "c" for c in result.unique)


def test_two_answers_have_figures_but_no_outlier(embedder: BuiltinEmbedder) -> None:
    result = run(embedder, {"a": PARIS[0], "off": GIT})
    assert result.agreement is not None and result.agreement < 0.3
    assert result.outliers == (), "with two answers nothing says which one is odd"


def test_failed_and_missing_answers_are_said_not_counted(embedder: BuiltinEmbedder) -> None:
    tracker = ConsensusTracker(embedder, ["a", "b", "c", "d"])
    assert tracker.current.reason == "no answer yet"
    one = tracker.add("a", PARIS[0])
    assert one.agreement is None and one.reason and "one answer so far" in one.reason
    assert one.progress == "1 of 4 answered"
    tracker.drop("b", "failed")
    two = tracker.add("d", PARIS[1])
    assert two.agreement is not None and two.pending == ("c",)
    assert two.progress == "2 of 4 answered, 1 failed (not counted)"
    done = tracker.drop("c", "cancelled")
    assert done.progress == "2 of 4 answered, 1 failed (not counted), 1 cancelled (not counted)"
    body = done.to_json()
    assert body["similarity"][0][3] == body["similarity"][3][0] == done.similarity[0][1]
    assert body["similarity"][1] == [None, None, None, None]  # b failed
    assert body["missing"] == [
        {"model": "b", "state": "failed"},
        {"model": "c", "state": "cancelled"},
    ]


def test_one_answer_in_the_end_gives_the_reason(embedder: BuiltinEmbedder) -> None:
    result = run(embedder, {"a": PARIS[0], "b": None})
    assert result.agreement is None and result.medoid is None
    assert result.reason == "only one model answered: agreement needs at least two answers"
    assert result.to_json()["similarity"] is None


def test_an_empty_answer_counts_as_missing(embedder: BuiltinEmbedder) -> None:
    result = run(embedder, {"a": PARIS[0], "b": "   ", "c": PARIS[1]})
    assert result.models == ("a", "c") and result.missing == (("b", "failed"),)


def test_sentences_are_claims_not_markup() -> None:
    answer = (
        "# Choosing a database\n\n"
        "Two options are common. Pick the *simplest* one that works!\n\n"
        "1. **SQLite** for a single user\n"
        "2. Postgres when several\n   processes write\n\n"
        "```python\nimport sqlite3\nconn = sqlite3.connect('q.db')\n```\n\n"
        "| option | when |\n|---|---|\n| SQLite | one user |\n\n"
        "> Quoted advice is still advice.\n\n"
        "---\nOk.\n"
    )
    assert split_sentences(answer) == [
        "Two options are common.",
        "Pick the simplest one that works!",
        "SQLite for a single user",
        "Postgres when several processes write",
        "SQLite, one user",
        "Quoted advice is still advice.",
    ]


def test_an_answer_of_only_code_still_has_a_vector(embedder: BuiltinEmbedder) -> None:
    code = "```python\nimport sqlite3\nconn = sqlite3.connect('quorum.db')\n```"
    result = run(embedder, {"a": code, "b": code.replace("quorum", "history"), "c": PARIS[0]})
    assert result.models == ("a", "b", "c") and result.medoid in ("a", "b")
    similarity = result.similarity
    assert similarity[0][1] > similarity[0][2] + 0.3, "two near-identical snippets are close"
    assert result.outliers == ("c",)


def test_fewer_than_half_can_be_outliers_and_ties_go_to_the_first() -> None:
    import numpy as np

    from core.consensus.agreement import measure

    close = np.array([1.0, 0.0, 0.0])
    far = [np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])]
    figures = measure(np.stack([close, close, far[0], far[1], close]))
    assert figures.outliers == (2, 3)  # two of five may be outliers
    four = measure(np.stack([close, close, far[0], far[1]]))
    assert len(four.outliers) == 1, "of four answers at most one is the odd one"
    same = measure(np.stack([close, close, close]))
    assert same.medoid == 0 and same.outliers == () and same.score == 1.0
