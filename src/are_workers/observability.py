"""``/metrics`` for a worker pool: job metrics of every child plus the ledger's queue depth.

Why the ledger: queue depth and the age of the oldest ready job, per queue, are what an
autoscaler (KEDA) scales on, and the ledger knows them for every broker alike.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import MetricsHandler
from prometheus_client.registry import Collector


class LedgerCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        from are_workers import ledger
        from are_workers.models.engine import get_engine

        depth = GaugeMetricFamily("are_queue_ready_jobs", "Jobs ready to run.", labels=["queue"])
        running = GaugeMetricFamily("are_queue_running_jobs", "Jobs running.", labels=["queue"])
        age = GaugeMetricFamily(
            "are_queue_oldest_ready_age_seconds", "Age of the oldest ready job.", labels=["queue"]
        )
        with get_engine().connect() as conn:
            for row in ledger.queue_depths(conn):
                depth.add_metric([row["queue"]], row["ready"])
                running.add_metric([row["queue"]], row["running"])
                age.add_metric([row["queue"]], row["oldest_age_s"])
        yield from (depth, running, age)


def serve_metrics(port: int, multiprocess_dir: Path) -> ThreadingHTTPServer:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(multiprocess_dir))
    registry.register(LedgerCollector())
    handler = MetricsHandler.factory(registry)
    server = ThreadingHTTPServer(("0.0.0.0", port), handler)  # noqa: S104 - scraped in-cluster
    threading.Thread(target=server.serve_forever, name="are-metrics", daemon=True).start()
    return server
