"""The Costs page's widgets: the page (`page`: workloads, budgets, the headline), its
charts (`charts`), the account's usage (`account`) and repricing a usage file (`reprice`)."""

from components.costs.page import render_costs_page

__all__ = ["render_costs_page"]
