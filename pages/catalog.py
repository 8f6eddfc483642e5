"""Model catalog: every model on the connected endpoint with prices, capabilities, workload."""

from __future__ import annotations

from components.catalog import render_catalog_page

render_catalog_page()
