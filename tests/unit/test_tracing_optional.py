"""Tracing is optional: without OpenTelemetry the core imports and every span is a no-op."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from are_workers import tracing
from are_workers.config import Settings

SRC = Path(__file__).resolve().parents[2] / "src"

WITHOUT_OPENTELEMETRY = textwrap.dedent(
    """
    import sys
    sys.modules["opentelemetry"] = None  # importing it now fails, as without the extra

    from are_workers import client, relay, tracing  # noqa: F401
    from are_workers.config import Settings
    from are_workers.errors import ConfigurationError
    from are_workers.middleware import ledger  # noqa: F401

    assert not tracing.available()
    with tracing.enqueue_span("system.noop", "job") as traceparent:
        assert traceparent is None
    with tracing.span("relay.publish") as span:
        span.set_attribute("are.jobs", 1)
    assert not tracing.configure(Settings(), process="worker")  # nothing configured
    try:
        tracing.configure(
            Settings(otel_exporter_otlp_endpoint="http://collector:4318"), process="worker"
        )
    except ConfigurationError as exc:
        assert "tracing' extra" in str(exc), exc
    else:
        raise AssertionError("an endpoint without the extra must be refused")
    print("ok")
    """
)


def test_the_core_imports_and_traces_nothing_without_opentelemetry() -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPENTELEMETRY],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


@pytest.mark.parametrize(
    ("traceparent", "trace_id"),
    [
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),  # invalid: all zero
        ("not-a-trace", None),
        (None, None),
    ],
)
def test_trace_id_of_a_traceparent(traceparent: str | None, trace_id: str | None) -> None:
    assert tracing.trace_id_of(traceparent) == trace_id


def test_the_otlp_endpoint_must_be_http() -> None:
    with pytest.raises(ValidationError, match="OTLP/HTTP"):
        Settings(otel_exporter_otlp_endpoint="grpc://collector:4317")
