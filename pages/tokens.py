"""Token & grammar workbench page: all drawing lives in components/tokens/page.py."""

from components.router import ensure_router

ensure_router()  # a deep link opened first on a fresh server still goes through app.py

from components.tokens import render_page  # noqa: E402 - after the router guard

render_page()
