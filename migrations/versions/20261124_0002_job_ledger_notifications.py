"""Job ledger notifications: wake the relay on insert, tell upstream apps when a job ends.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Triggers, so that every writer (our client, the ATS in any language, psql) gets the same
behaviour. The insert trigger is statement-level: a bulk enqueue sends one NOTIFY.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION are_task_runs_notify_new() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('are_task_runs_new', '');
            RETURN NULL;
        END $$;

        CREATE TRIGGER task_runs_notify_new
            AFTER INSERT ON task_runs
            FOR EACH STATEMENT EXECUTE FUNCTION are_task_runs_notify_new();

        CREATE FUNCTION are_task_runs_notify_done() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('are_task_runs_done', json_build_object(
                'id', NEW.id, 'actor', NEW.actor, 'status', NEW.status,
                'organization_id', NEW.organization_id)::text);
            RETURN NULL;
        END $$;

        CREATE TRIGGER task_runs_notify_done
            AFTER UPDATE OF status ON task_runs
            FOR EACH ROW
            WHEN (NEW.status IS DISTINCT FROM OLD.status
                  AND NEW.status IN ('succeeded', 'failed', 'dead', 'cancelled'))
            EXECUTE FUNCTION are_task_runs_notify_done();

        -- Wake the relay when a row goes back to the outbox (a retry, a sweep, a replay);
        -- not when the relay itself marks rows published.
        CREATE FUNCTION are_task_runs_notify_requeued() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('are_task_runs_new', '');
            RETURN NULL;
        END $$;

        CREATE TRIGGER task_runs_notify_requeued
            AFTER UPDATE OF published_at ON task_runs
            FOR EACH ROW WHEN (NEW.published_at IS NULL AND OLD.published_at IS NOT NULL)
            EXECUTE FUNCTION are_task_runs_notify_requeued();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS task_runs_notify_requeued ON task_runs;
        DROP TRIGGER IF EXISTS task_runs_notify_done ON task_runs;
        DROP TRIGGER IF EXISTS task_runs_notify_new ON task_runs;
        DROP FUNCTION IF EXISTS are_task_runs_notify_requeued();
        DROP FUNCTION IF EXISTS are_task_runs_notify_done();
        DROP FUNCTION IF EXISTS are_task_runs_notify_new();
        """
    )
