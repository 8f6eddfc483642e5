"""The Evaluate page's widgets: setup, runs and progress (`page`), results, grid, diff and
exports (`results`), and the leaderboard from blind votes (`leaderboard`)."""

from components.evaluate.page import RUN, render_page

__all__ = ["RUN", "render_page"]
