"""The catalog page's widgets: the page (`page`), its data work (`frame`, pure: filters,
workload costs, display columns) and its figure (`chart`)."""

from components.catalog.page import render_catalog_page

__all__ = ["render_catalog_page"]
