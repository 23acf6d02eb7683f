"""The panes' grid: as many columns as fit, rows of equal height, scrolling when they do not fit."""

from __future__ import annotations

import math

from textual.containers import VerticalScroll

from tui.widgets.pane import ModelPane

MIN_PANE_WIDTH = 40
MIN_PANE_HEIGHT = 8


def grid_shape(count: int, width: int, height: int) -> tuple[int, int]:
    """(columns, row height) for ``count`` panes in a width x height area."""
    if count <= 0:
        return 1, max(MIN_PANE_HEIGHT, height)
    columns = max(1, min(count, width // MIN_PANE_WIDTH))
    rows = math.ceil(count / columns)
    columns = math.ceil(count / rows)  # balance: 5 panes on 4 columns → 3 + 2
    return columns, max(MIN_PANE_HEIGHT, height // rows)


class PaneGrid(VerticalScroll):
    """Fixed-size panes in a grid; scrolls when they do not fit."""

    can_focus = False

    def relayout(self) -> None:
        panes = list(self.query_children(ModelPane))
        columns, row_height = grid_shape(len(panes), self.size.width, self.size.height)
        self.styles.grid_size_columns = columns
        self.styles.grid_rows = str(row_height)

    def on_resize(self) -> None:
        self.relayout()
