"""Spend (admin): everyone's spend by person, model and day; only for WAFER_ADMINS."""

from __future__ import annotations

from components.admin import render_admin_page
from components.router import ensure_router

ensure_router()  # a deep link opened first on a fresh server still goes through app.py
render_admin_page()
