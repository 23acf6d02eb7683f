"""HTML export: one self-contained page (inline CSS; no scripts, fonts or network).

Model text is untrusted. Answers are rendered from Markdown by markdown-it-py with raw HTML
disabled (so ``<script>`` arrives as text), images disabled (no network loads) and links kept
only for http, https and mailto. Every other string — model names, queries, errors — goes
through `html.escape`. A Content-Security-Policy without any script source is the second wall.
"""

from __future__ import annotations

import re
from html import escape

from markdown_it import MarkdownIt

from core.export.describe import (
    consensus_markdown,
    cut_line,
    duration,
    error_line,
    sources,
    state_label,
    timing_line,
)
from core.export.markdown import session_title
from core.history.records import ResponseRecord, SessionRecord, TurnRecord

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.\-]*):")

_STYLE = """
body{font:15px/1.55 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:60rem;margin:2rem auto;
padding:0 1rem;color:#1d1f21;background:#fff}
h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:1px solid #ddd}
.meta,.timing{color:#666;font-size:.85rem}
blockquote.query{margin:0;padding:.5rem 1rem;background:#f3f5f8;border-left:4px solid #6a8caf;
white-space:pre-wrap}
article{border:1px solid #ddd;border-radius:6px;padding:.25rem 1rem;margin:1rem 0}
article.failed{border-color:#d9534f}article.partial{border-color:#e0a800}
article h3{margin:.5rem 0 0}.state{font-weight:normal;font-size:.85rem;color:#555}
.error{color:#b52b27;white-space:pre-wrap}.cut{color:#8a6d00}
pre{background:#f6f8fa;padding:.75rem;overflow:auto}code{font-family:ui-monospace,monospace}
details{margin:.5rem 0}section.consensus{background:#f4fbf4;padding:.25rem 1rem;border-radius:6px}
"""


def safe_link(url: str) -> bool:
    """Only links without a scheme (anchors, relative) or with http(s)/mailto are kept."""
    match = _SCHEME.match(url)
    return match is None or match.group(1).lower() in SAFE_SCHEMES


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.disable("image")
    md.validateLink = safe_link  # type: ignore[method-assign]  # markdown-it's documented hook
    return md


def to_html(record: SessionRecord) -> str:
    md = _renderer()
    title = escape(session_title(record))
    body = [
        f"<header><h1>{title}</h1>",
        f'<p class="meta">Session <code>{escape(record.id)}</code> · started '
        f"{escape(record.created_at)} · {len(record.turns)} turn(s)</p></header>",
    ]
    for turn in record.turns:
        body += _turn(md, turn)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _turn(md: MarkdownIt, turn: TurnRecord) -> list[str]:
    wall = duration(turn.wall_ms)
    meta = f"asked {turn.created_at}" + (f" · wall time {wall}" if wall else "")
    if turn.state != "done":
        meta += f" · {turn.state}"
    parts = [
        f'<section class="turn"><h2>Turn {turn.seq}</h2>',
        f'<blockquote class="query">{escape(turn.query)}</blockquote>',
        f'<p class="meta">{escape(meta)}</p>',
    ]
    parts += [_response(md, r) for r in turn.responses]
    consensus = consensus_markdown(turn.consensus)
    if consensus is not None:
        parts.append(
            f'<section class="consensus"><h3>Consensus</h3>{md.render(consensus)}</section>'
        )
    found = sources(turn.context)
    if found:
        items = []
        for source in found:
            label = escape(source.label)
            if source.url and safe_link(source.url):
                label = f'<a href="{escape(source.url)}" rel="noreferrer">{label}</a>'
            excerpt = f"<br><small>{escape(source.excerpt)}</small>" if source.excerpt else ""
            items.append(f"<li>{label}{excerpt}</li>")
        parts.append(
            f'<section class="sources"><h3>Sources</h3><ul>{"".join(items)}</ul></section>'
        )
    parts.append("</section>")
    return parts


def _response(md: MarkdownIt, r: ResponseRecord) -> str:
    css = "ok" if r.state == "done" else "partial" if r.partial else r.state
    parts = [
        f'<article class="{escape(css)}"><h3>{escape(r.model)} '
        f'<span class="state">{escape(r.provider)}/{escape(r.model_id)} · '
        f"{escape(state_label(r))}</span></h3>",
        f'<p class="timing">{escape(timing_line(r))}</p>',
    ]
    if r.reasoning:
        parts.append(f"<details><summary>Reasoning</summary>{md.render(r.reasoning)}</details>")
    if r.text:
        parts.append(f'<div class="answer">{md.render(r.text)}</div>')
    if (cut := cut_line(r)) is not None:
        parts.append(f'<p class="cut">✂ {escape(cut)}</p>')
    if (error := error_line(r)) is not None:
        parts.append(f'<p class="error">✗ {escape(error)}</p>')
    parts.append("</article>")
    return "\n".join(parts)
