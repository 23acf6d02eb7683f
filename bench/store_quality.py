"""Retrieval quality on a labelled set: recall@5 and MRR for vector-only, keyword-only, hybrid.

The corpus is real documentation: the Python Language Reference and library topics that ship
with CPython itself (``pydoc_data.topics``, 79 documents, about 465 KB of text), written out as
one text file per topic and ingested through the real readers, chunker and embedder. Each
question below was written by hand for one topic (a few accept a second topic that documents
the same thing); a hit is a retrieved chunk from an accepted topic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.config import StoreSettings
from core.events import Source
from core.store.embedder import Embedder
from core.store.kb import KnowledgeBase

# (question, accepted topics): phrased as people ask, not as the docs say it
QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("What happens to assert statements when Python runs with -O?", ("assert",)),
    ("How is x += 1 evaluated for mutable objects?", ("augassign",)),
    ("How can an inner function rebind a variable of the enclosing function?", ("nonlocal",)),
    ("How do I make a function assign to a module-level variable?", ("global",)),
    ("Which objects count as false in an if condition?", ("truth",)),
    ("Which operators bind more tightly than others?", ("operator-summary",)),
    ("How do I print a number with thousands separators in an f-string?", ("formatstrings",)),
    (
        "Which string method compares text ignoring case, stronger than lower()?",
        ("string-methods",),
    ),
    ("How does a step work in a slice like a[::2]?", ("slicings", "typesseq")),
    ("What does a generator function do when it reaches yield?", ("yield",)),
    ("How do I suspend a coroutine until another awaitable finishes?", ("await",)),
    ("How does async with call the context manager?", ("async",)),
    ("How do I write a small anonymous function inline?", ("lambda",)),
    ("How do I chain a new exception to the one being handled?", ("raise",)),
    ("In what order are except clauses matched and what does finally do?", ("try",)),
    ("What does from module import * import?", ("import",)),
    ("How are names resolved in nested scopes and class bodies?", ("naming", "execmodel")),
    ("How do I write hexadecimal, octal and binary integer literals?", ("integers",)),
    ("How are floating point literals with exponents written?", ("floating",)),
    ("How do I write a complex number literal with j?", ("imaginary",)),
    ("What do the << and >> operators do to integers?", ("shifting",)),
    ("What does 2 ** -1 return and how does the power operator bind?", ("power",)),
    ("What does the ~ operator do to an integer?", ("unary",)),
    ("Can comparisons be chained like a < b < c?", ("comparisons",)),
    ("How does the in operator test membership in a container?", ("in",)),
    ("How do I declare a class that inherits from two base classes?", ("class",)),
    ("How do default argument values and *args work when defining a function?", ("function",)),
    ("What does a statement that does nothing look like?", ("pass",)),
    ("How do I remove an item from a list by index with a statement?", ("del",)),
    ("What does return do inside a generator?", ("return",)),
    ("Which dict method returns a default when a key is missing?", ("typesmapping",)),
    ("Which methods grow or shrink a list in place, like append and pop?", ("typesseq-mutable",)),
    ("When is __getattr__ called instead of normal attribute lookup?", ("attribute-access",)),
    ("Which special method does repr() call on an object?", ("customization", "specialnames")),
    ("How do I step through code with the Python debugger?", ("debugger",)),
    ("What is the Ellipsis object written as three dots?", ("bltin-ellipsis-object",)),
    ("What is None and what type does it have?", ("bltin-null-object",)),
    ("Which read-only attributes like __dict__ and __class__ do objects have?", ("specialattrs",)),
    ("How does a while loop with an else clause behave?", ("while",)),
    ("How do I skip to the next iteration of a loop?", ("continue",)),
    ("How are list comprehensions and list displays evaluated?", ("lists",)),
    ("What do the & | and ^ operators do?", ("bitwise",)),
    ("How are keyword arguments matched to parameters in a call?", ("calls",)),
    ("Which characters may a Python identifier contain?", ("identifiers",)),
    ("What can I do with a module object besides attribute access?", ("typesmodules",)),
    ("How do I implement a + b for my own class, including __radd__?", ("numeric-types",)),
    ("Which methods make my class behave like a container with len() and []?", ("sequence-types",)),
    ("What does the with statement call on entry and on exit?", ("with", "context-managers")),
    ("What happens to break inside a try with a finally clause?", ("break", "try")),
    ("What is a conditional expression like x if c else y?", ("if", "else", "booleans")),
]


@dataclass(frozen=True, slots=True)
class Quality:
    mode: str
    recall_at_5: float
    mrr: float


def topic_of(source: str) -> str:
    return Path(source).stem


def evaluate(
    search: Callable[[str, str], Sequence[Source]],
    modes: Sequence[str] = ("vector", "keyword", "hybrid"),
) -> list[Quality]:
    """``search(question, mode)`` → ranked sources (with ``.source``)."""
    out = []
    for mode in modes:
        hits, reciprocal = 0, 0.0
        for question, accepted in QUESTIONS:
            ranked = [topic_of(s.source) for s in search(question, mode)]
            ranks = [i for i, topic in enumerate(ranked[:5], start=1) if topic in accepted]
            if ranks:
                hits += 1
                reciprocal += 1 / ranks[0]
        out.append(Quality(mode, hits / len(QUESTIONS), reciprocal / len(QUESTIONS)))
    return out


def bench_quality(embedder: Embedder, topics_kb: Path) -> None:
    """recall@5 and MRR per mode, with the shipped ``min_score`` and with none."""
    print(f"\n## Retrieval quality ({len(QUESTIONS)} questions, Python reference topics)\n")
    print("| min_score | mode | recall@5 | MRR |")
    print("|---|---|---|---|")
    for min_score in (StoreSettings().min_score, 0.0):
        settings = StoreSettings(min_score=min_score)
        with KnowledgeBase(settings, root=topics_kb, embedder=embedder) as kb:
            results = evaluate(lambda q, mode: kb.search(q, mode=mode, top_k=5))  # type: ignore[arg-type]
        for r in results:
            print(f"| {min_score:g} | {r.mode} | {r.recall_at_5:.3f} | {r.mrr:.3f} |")
