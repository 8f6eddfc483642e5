"""The Token & grammar page's widgets: the page (`page`), token chips and coloured output
(`view`, also used by Chat for log-probabilities) and the grammar editor
(`grammar_editor`)."""

from components.tokens.page import render_page

__all__ = ["render_page"]
