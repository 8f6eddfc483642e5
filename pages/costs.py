"""Costs: the workload planner, repricing real usage, and account usage."""

from components.costs import render_costs_page

render_costs_page()
