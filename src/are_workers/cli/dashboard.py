"""``are-workers dashboard``: serve the operators' web pages (see docs/operations.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from are_workers.cli.output import cli_settings, console, friendly_errors


def dashboard(
    port: Annotated[
        int | None, typer.Option(help="Port (default ARE_DASHBOARD_PORT, 8800).")
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(help="Address to bind in production (development binds 127.0.0.1)."),
    ] = None,
) -> None:
    """Serve the dashboard: queues, workers, jobs, schedules, compliance; actions for operators.

    In development both tokens are generated and printed here unless ARE_DASHBOARD_*_TOKEN
    are set; production refuses to start without them (or a trusted proxy).
    """
    with friendly_errors():
        settings = cli_settings(service=True)
        try:
            import uvicorn

            from are_workers.dashboard.access import build_access, server_key
            from are_workers.dashboard.app import create_app
        except ImportError as exc:
            console.print(
                f"[red]error[/]: the dashboard needs the 'dashboard' extra "
                f"(pip install 'are-workers[dashboard]'): {exc}"
            )
            raise typer.Exit(1) from None
        from are_workers.models.engine import get_engine

        access = build_access(settings, server_key())
        bind = (
            (host or settings.dashboard_host)
            if settings.environment == "production"
            else "127.0.0.1"
        )
        bound_port = port or settings.dashboard_port
        app = create_app(settings, get_engine(), access)
        console.print(f"ARE Workers dashboard on http://{bind}:{bound_port}/")
        for role, token in access.generated.items():
            console.print(f"  {role} token (generated for this run): {token}")
        if access.trusted_proxies:
            console.print(
                f"  trusting identities in {access.identity_header} from "
                + ", ".join(sorted(access.trusted_proxies))
            )
        uvicorn.run(app, host=bind, port=bound_port, log_level="warning", proxy_headers=False,
                    server_header=False)  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
