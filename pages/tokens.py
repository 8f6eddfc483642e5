"""Token & grammar workbench page: all drawing lives in components/tokens.py."""

from components.tokens import render_page

render_page()
