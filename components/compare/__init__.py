"""The Compare page's widgets (`page`): setup, panes that stream side by side, the
summary, votes and exports."""

from components.compare.page import SESSION_KEY, CompareSession, render_page

__all__ = ["SESSION_KEY", "CompareSession", "render_page"]
