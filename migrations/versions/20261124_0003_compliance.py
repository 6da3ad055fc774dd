"""Compliance: the least-privilege runtime role, and audit pruning that re-anchors the chain.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Why roles in a migration: the append-only audit log and the separately held
self-identification data are only protected if the workers do *not* connect as the owner
(or a superuser, which pgserver is by default). Migrations run as the owner; the workers and
the scheduler run as a login role that is a member of ``are_runtime``:

* ``are_runtime`` (NOLOGIN): read/write on the schema, except that on ``audit_log`` it may
  only INSERT and seal (UPDATE of ``seq``, ``prev_hash``, ``row_hash``; the trigger refuses
  anything else), never DELETE or TRUNCATE; and on ``candidate_self_identifications`` it
  may write, erase and delete rows, and read only the non-sensitive columns.
* ``are_special_category_reader`` (NOLOGIN): reads self-identification. ``are_runtime`` is
  a member *without inheritance*, so a worker reads those columns only by an explicit
  ``SET LOCAL ROLE`` (the bias audit, exports, key rotation), never by accident.
* ``are_audit_prune()``: the only way old audit rows are deleted, owned by the owner
  (SECURITY DEFINER). It deletes only a sealed prefix of one organization's chain, never
  rows younger than a year nor the chain's head, and appends an ``audit.pruned`` entry holding the last deleted
  hash, to which verification re-anchors the chain.

Roles are cluster-wide, so they are created if missing and never dropped on downgrade
(other databases on the server may use them). ``ALTER DEFAULT PRIVILEGES`` extends the
grants to tables that later migrations create. Deployments create their login role with
``CREATE ROLE are_worker LOGIN PASSWORD '…' IN ROLE are_runtime`` and set
``ARE_RUNTIME_DATABASE_URL``.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CREATE_ROLES = """
DO $$
DECLARE role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['are_runtime', 'are_special_category_reader'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it at the same moment
            END;
        END IF;
    END LOOP;
END $$;
"""

AUDIT_PRUNE = """
CREATE FUNCTION are_audit_prune(p_organization_id uuid, p_before timestamptz)
RETURNS TABLE (deleted bigint, through_seq bigint, through_hash text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    first_young bigint;
    head_seq bigint;
    last_seq bigint;
    last_hash text;
    removed bigint;
BEGIN
    IF p_before > now() - interval '365 days' THEN
        RAISE EXCEPTION 'audit rows younger than 365 days are never pruned (asked: before %)',
            p_before USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Serialise with the sealer of this organization (same key as the application uses).
    PERFORM pg_advisory_xact_lock(hashtextextended('are.audit_seal:' || p_organization_id, 0));
    -- A contiguous prefix of the chain: sealed rows before the first one that is still
    -- young, never the head itself (the sealer continues the chain from it).
    SELECT min(a.seq) INTO first_young FROM audit_log a
    WHERE a.organization_id = p_organization_id AND a.seq IS NOT NULL
      AND a.occurred_at >= p_before;
    SELECT max(a.seq) INTO head_seq FROM audit_log a
    WHERE a.organization_id = p_organization_id AND a.seq IS NOT NULL;
    SELECT a.seq, a.row_hash INTO last_seq, last_hash FROM audit_log a
    WHERE a.organization_id = p_organization_id AND a.seq IS NOT NULL
      AND a.occurred_at < p_before AND (first_young IS NULL OR a.seq < first_young)
      AND a.seq < head_seq
    ORDER BY a.seq DESC LIMIT 1;
    IF last_seq IS NULL THEN
        RETURN QUERY SELECT 0::bigint, NULL::bigint, NULL::text;
        RETURN;
    END IF;
    PERFORM set_config('are.audit_retention', 'on', true);
    DELETE FROM audit_log WHERE organization_id = p_organization_id AND seq <= last_seq;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('are.audit_retention', 'off', true);
    INSERT INTO audit_log (organization_id, actor_type, action, entity_type, output_refs)
    VALUES (p_organization_id, 'system', 'audit.pruned', 'audit_log',
            jsonb_build_object('through_seq', last_seq, 'through_hash', last_hash,
                               'deleted', removed, 'before', p_before));
    RETURN QUERY SELECT removed, last_seq, last_hash;
END $$;
"""


def upgrade() -> None:
    op.execute(CREATE_ROLES)
    op.execute(
        """
        GRANT USAGE ON SCHEMA public TO are_runtime, are_special_category_reader;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO are_runtime;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO are_runtime;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO are_runtime;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT USAGE, SELECT ON SEQUENCES TO are_runtime;

        REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM are_runtime;
        GRANT UPDATE (seq, prev_hash, row_hash) ON audit_log TO are_runtime;

        REVOKE ALL ON candidate_self_identifications FROM are_runtime;
        GRANT SELECT (id, organization_id, candidate_id, declined_to_answer, collected_at,
                      created_at, updated_at), INSERT, DELETE
            ON candidate_self_identifications TO are_runtime;
        GRANT UPDATE (gender, ethnicity, disability_status, veteran_status, age_band, updated_at)
            ON candidate_self_identifications TO are_runtime;
        GRANT SELECT, UPDATE ON candidate_self_identifications TO are_special_category_reader;
        GRANT are_special_category_reader TO are_runtime WITH INHERIT FALSE, SET TRUE;
        """
    )
    op.execute(AUDIT_PRUNE)
    op.execute(
        """
        REVOKE ALL ON FUNCTION are_audit_prune(uuid, timestamptz) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION are_audit_prune(uuid, timestamptz) TO are_runtime;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION IF EXISTS are_audit_prune(uuid, timestamptz);
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM are_runtime;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            REVOKE USAGE, SELECT ON SEQUENCES FROM are_runtime;
        REVOKE ALL ON ALL TABLES IN SCHEMA public FROM are_runtime, are_special_category_reader;
        REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM are_runtime;
        REVOKE USAGE ON SCHEMA public FROM are_runtime, are_special_category_reader;
        """
    )
