"""Does the consensus pick better answers? The default local council on questions with known
short answers: how often the medoid is right, against a member chosen at random and the synthesis.

    .venv/bin/python -m bench.consensus_eval [--synthesizer precise] [--limit N] [--show]

Every question goes to the bundled config's council through the real engine and the real
consensus stage (the built-in embedder, the synthesis prompt, the synthesizer as the app runs
it). An answer is right when it contains one of the question's accepted answers as a word or
phrase (case-insensitive); an answer that names the right one among wrong ones counts as right,
so the figures are an upper bound for every column alike. "random member" is the expectation
over members (the mean of their scores), not one draw.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from core.config import ModelSpec, load_settings
from core.consensus.stage import ConsensusStage
from core.consensus.tracker import ConsensusTracker
from core.engine import FanOut
from core.paths import bundled_config_path
from core.providers import ProviderSet, make_client
from core.results import FanoutResult
from core.store.embedder import BuiltinEmbedder

# (question, accepted answers): short, checkable facts
QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("What is the capital of France?", ("Paris",)),
    ("What is the capital of Japan?", ("Tokyo",)),
    ("What is the capital of Italy?", ("Rome",)),
    ("What is the capital of Germany?", ("Berlin",)),
    ("What is the capital of Spain?", ("Madrid",)),
    ("What is the capital of Canada?", ("Ottawa",)),
    ("What is the capital of Australia?", ("Canberra",)),
    ("What is the capital of Egypt?", ("Cairo",)),
    ("What is the largest planet in the solar system?", ("Jupiter",)),
    ("Which planet is known as the Red Planet?", ("Mars",)),
    ("Which planet is closest to the Sun?", ("Mercury",)),
    ("What is the chemical symbol for gold?", ("Au",)),
    ("What is the chemical symbol for sodium?", ("Na",)),
    ("What gas do plants absorb from the air for photosynthesis?", ("carbon dioxide", "CO2")),
    ("What is the boiling point of water at sea level in degrees Celsius?", ("100",)),
    ("How many continents are there on Earth?", ("seven", "7")),
    ("How many days are there in a leap year?", ("366",)),
    ("How many sides does a hexagon have?", ("six", "6")),
    ("What is 7 times 8?", ("56",)),
    ("What is the square root of 81?", ("nine", "9")),
    ("Who wrote the play Romeo and Juliet?", ("Shakespeare",)),
    ("Who painted the Mona Lisa?", ("Leonardo", "da Vinci")),
    ("Who developed the theory of relativity?", ("Einstein",)),
    ("Who was the first person to walk on the Moon?", ("Armstrong",)),
    ("What is the largest ocean on Earth?", ("Pacific",)),
    ("What is the longest river in South America?", ("Amazon",)),
    ("What is the hardest natural substance?", ("diamond",)),
    ("What is the freezing point of water in degrees Fahrenheit?", ("32",)),
    ("What language is mainly spoken in Brazil?", ("Portuguese",)),
    ("What is the currency of Japan?", ("yen",)),
    ("Which organ pumps blood through the human body?", ("heart",)),
    ("What is the smallest prime number?", ("two", "2")),
    ("In which continent is Kenya?", ("Africa",)),
    ("What do bees make?", ("honey",)),
    ("What is the tallest mountain in the world?", ("Everest",)),
    ("Which metal is liquid at room temperature?", ("mercury",)),
]


def right(text: str, accepted: Sequence[str]) -> bool:
    return any(re.search(rf"\b{re.escape(a)}\b", text, re.IGNORECASE) for a in accepted)


@dataclass(frozen=True, slots=True)
class Outcome:
    members: dict[str, bool]
    medoid: str | None
    synthesis: bool | None  # None: no synthesis came back


async def ask(
    providers: ProviderSet,
    embedder: BuiltinEmbedder,
    members: Sequence[ModelSpec],
    synthesizer: ModelSpec,
    question: str,
    rng: random.Random,
) -> FanoutResult:
    tracker = ConsensusTracker(embedder, [m.name for m in members])
    stage = ConsensusStage(tracker, question, synthesizers=[synthesizer], rng=rng)
    result = FanoutResult()
    async with FanOut(members, providers, question, stages=[stage]).run() as events:
        async for event in events:
            result.apply(event)
    return result


async def evaluate(synthesizer_name: str, limit: int, show: bool) -> list[Outcome]:
    settings = load_settings(bundled_config_path())
    members = settings.enabled_models
    (synthesizer,) = settings.select([synthesizer_name])
    embedder = BuiltinEmbedder()
    embedder.load()
    rng = random.Random(1)
    outcomes = []
    client = make_client(len(members))
    providers = ProviderSet(client)
    try:
        for number, (question, accepted) in enumerate(QUESTIONS[:limit], start=1):
            result = await ask(providers, embedder, members, synthesizer, question, rng)
            scored = {
                name: r.ok and right(r.text, accepted) for name, r in result.responses.items()
            }
            medoid = result.consensus.medoid if result.consensus else None
            text = result.synthesis.text
            outcome = Outcome(scored, medoid, None if text is None else right(text, accepted))
            outcomes.append(outcome)
            marks = " ".join(f"{n}={'+' if ok else '-'}" for n, ok in scored.items())
            print(
                f"{number:2}. {question} [{accepted[0]}] {marks} medoid={medoid} "
                f"synthesis={'+' if outcome.synthesis else '-'}",
                file=sys.stderr,
            )
            if show:
                for name, r in result.responses.items():
                    print(f"    {name}: {r.text.strip()[:160]!r}", file=sys.stderr)
                print(f"    synthesis: {(text or '').strip()[:160]!r}", file=sys.stderr)
    finally:
        await providers.aclose()
        await client.aclose()
    return outcomes


def report(outcomes: Sequence[Outcome]) -> None:
    n = len(outcomes)
    names = list(outcomes[0].members)
    per_member = {m: sum(o.members[m] for o in outcomes) / n for m in names}
    random_member = sum(per_member.values()) / len(names)
    medoid = sum(bool(o.medoid and o.members.get(o.medoid)) for o in outcomes) / n
    synthesized = [o for o in outcomes if o.synthesis is not None]
    synthesis = sum(bool(o.synthesis) for o in synthesized) / n
    anyone = sum(any(o.members.values()) for o in outcomes) / n
    print(f"## The default local council on {n} questions with known answers\n")
    print("| answer chosen | right |")
    print("|---|---|")
    print(f"| a member at random (expectation) | {random_member:.0%} |")
    for m in names:
        print(f"| always {m} | {per_member[m]:.0%} |")
    print(f"| the medoid (most representative) | {medoid:.0%} |")
    print(f"| the synthesis ({len(synthesized)} of {n} came back) | {synthesis:.0%} |")
    print(f"| any member right (ceiling for picking one) | {anyone:.0%} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthesizer", default="precise")
    parser.add_argument("--limit", type=int, default=len(QUESTIONS))
    parser.add_argument("--show", action="store_true", help="print each answer's start")
    args = parser.parse_args(argv)
    outcomes = anyio.run(evaluate, args.synthesizer, args.limit, args.show)
    report(outcomes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
