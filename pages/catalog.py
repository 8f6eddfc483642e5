"""Model catalog: every model on the connected endpoint with prices, capabilities, workload."""

from __future__ import annotations

from components.router import ensure_router

ensure_router()  # a shared filter link opened first on a fresh server still goes through app.py

from components.catalog import render_catalog_page  # noqa: E402 - after the router guard

render_catalog_page()
