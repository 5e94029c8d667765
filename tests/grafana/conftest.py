"""The demo-filled store of the dashboard tests, shared: Grafana's panel queries run over it."""

from tests.dashboards.conftest import filled  # noqa: F401  (the fixture, for this package)
