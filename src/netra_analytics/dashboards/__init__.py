"""Dashboards: the panel catalog (`catalog.py`), how a panel's rows are computed
(`panels.py`, `sql/`), and the built-in dashboard's pages and endpoints (`routes.py`, `static/`)."""
