"""Costs: the workload planner, repricing real usage, and account usage."""

from components.router import ensure_router

ensure_router()  # a share link opened first on a fresh server still goes through app.py

from components.costs import render_costs_page  # noqa: E402 - after the router guard

render_costs_page()
