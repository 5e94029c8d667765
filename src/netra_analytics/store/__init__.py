"""ClickHouse: the schema's migrations and two backends behind one interface (`Store`)."""

from __future__ import annotations

from netra_analytics.config import Settings
from netra_analytics.store.base import DATABASE, Store


def open_store(settings: Settings) -> Store:
    """The configured store: a ClickHouse server if `CLICKHOUSE_ANALYTICS_URL` is set, else chDB."""
    if settings.clickhouse is not None:
        from netra_analytics.store.http_backend import HttpStore

        # The client's own socket timeout frees a thread a hung server holds; callers time out
        # sooner (`StoreCalls`). Never below a minute: reports and builds run long queries.
        return HttpStore(settings.clickhouse, timeout=max(60.0, settings.store_timeout_seconds))
    from netra_analytics.store.chdb_backend import ChdbStore

    return ChdbStore(settings.data_dir / "chdb")


__all__ = ["DATABASE", "Store", "open_store"]
