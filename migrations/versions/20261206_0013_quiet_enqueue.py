"""Enqueue without ``NOTIFY`` while a relay is busy: it polls then.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

Why: a transaction that sends a ``NOTIFY`` takes a lock at commit that PostgreSQL holds for
the whole commit, WAL flush included, and that every notifying transaction of the cluster
shares: notifying commits are serialised and cannot share a WAL flush. With one job per
caller transaction each enqueue paid it, and waited for the workers' bookkeeping commits
(which notify completions) to flush one by one, and each ``NOTIFY`` woke the relay for a
pass of its own.

How, with two advisory locks (the relay's side is in ``are_workers.relay``):

* ``(ARE, 1)`` "busy": a relay holds it exclusively (session lock) while it polls the
  outbox every ``ARE_RELAY_BUSY_POLL_SECONDS``. The insert trigger tests it (take shared,
  release at once); held means: do not notify.
* ``(ARE, 2)`` "unannounced": a transaction that skips the ``NOTIFY`` first takes it shared
  until it ends. A relay that stops polling releases "busy", then takes "unannounced"
  exclusively (``try``, never waiting in line) before its last look at the outbox: so every
  job that was not announced has committed (or rolled back) before that look. A caller
  never waits on either lock: when a ``try`` fails, it notifies.

Nothing changes for writers: the contract is still a plain INSERT.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Advisory lock key space of ours ('AREW'); the keys are in ``are_workers.relay`` too.
LOCK_SPACE = 1095910743


#: The trigger body: skip the NOTIFY while a relay is busy. Inlined in both trigger functions
#: (no helper function): a trigger runs under the inserting session's search_path.
_WAKE_RELAY_UNLESS_BUSY = f"""
        BEGIN
            IF pg_try_advisory_lock_shared({LOCK_SPACE}, 1) THEN
                PERFORM pg_advisory_unlock_shared({LOCK_SPACE}, 1);   -- no relay is busy
            -- A relay polls. Hold "unannounced" until this transaction ends, then look again:
            -- if the relay still polls, it will wait for this commit before it stops. When
            -- the lock is not to be had, the relay is stopping right now: notify.
            ELSIF pg_try_advisory_xact_lock_shared({LOCK_SPACE}, 2) THEN
                IF NOT pg_try_advisory_lock_shared({LOCK_SPACE}, 1) THEN
                    RETURN NULL;                                        -- still busy: skip
                END IF;
                PERFORM pg_advisory_unlock_shared({LOCK_SPACE}, 1);   -- it stopped meanwhile
            END IF;
            PERFORM pg_notify('are_task_runs_new', '');
            RETURN NULL;
        END"""


def upgrade() -> None:
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION are_task_runs_notify_new() RETURNS trigger
        LANGUAGE plpgsql AS $${_WAKE_RELAY_UNLESS_BUSY} $$;

        CREATE OR REPLACE FUNCTION are_task_runs_notify_requeued() RETURNS trigger
        LANGUAGE plpgsql AS $${_WAKE_RELAY_UNLESS_BUSY} $$;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION are_task_runs_notify_new() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('are_task_runs_new', '');
            RETURN NULL;
        END $$;

        CREATE OR REPLACE FUNCTION are_task_runs_notify_requeued() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('are_task_runs_new', '');
            RETURN NULL;
        END $$;
        """
    )
