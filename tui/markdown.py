"""Rich's Markdown renderable with one shared parser.

`rich.markdown.Markdown` builds a new markdown-it parser for every instance, which costs more
than parsing a short block; the panes render thousands of small blocks, so they share one.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from rich.markdown import Markdown

_PARSER = MarkdownIt().enable("strikethrough").enable("table")


class FastMarkdown(Markdown):
    """Same rendering as `rich.markdown.Markdown`; links are never turned into hyperlinks
    (model text is untrusted)."""

    def __init__(self, markup: str, code_theme: str = "monokai") -> None:
        self.markup = markup
        self.parsed = _PARSER.parse(markup)
        self.code_theme = code_theme
        self.justify = None
        self.style = "none"
        self.hyperlinks = False
        self.inline_code_lexer = None
        self.inline_code_theme = code_theme
