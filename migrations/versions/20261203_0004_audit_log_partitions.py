"""Partition ``audit_log`` by month, so old audit data is pruned by dropping whole partitions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Why: deleting a year-old prefix row by row (``are_audit_prune`` of 0003) rewrites the heap,
bloats the indexes and needs the append-only trigger to be switched off for the session.
Dropping a month's partition is instant, leaves nothing behind and fires no row trigger.

What changes:

* ``audit_log`` becomes ``PARTITION BY RANGE (occurred_at)``, one partition per calendar
  month in UTC (``audit_log_pYYYYMM``) plus ``audit_log_default``, which catches a row whose
  month has no partition yet so an audited write never fails. The primary key becomes
  ``(id, occurred_at)`` (a partitioned table's unique keys must hold its partition key);
  ``(organization_id, seq)`` is no longer a unique constraint but an index: one sealer per
  organization (advisory lock) assigns ``seq``, and verification names a duplicated one.
* ``are_audit_ensure_partitions(months_ahead)`` (SECURITY DEFINER) creates the coming
  months' partitions and moves any row found in the default partition into a partition of
  its own month. A scheduled job runs it daily.
* ``are_audit_drop_partition(name)`` (SECURITY DEFINER) drops one monthly partition whose
  upper bound is more than 365 days old and whose rows are all sealed. Before it drops, it
  appends one ``audit.pruned`` row per organization that had rows in it, holding the pruned
  ``seq`` ranges and the hash of each range's last row: verification re-anchors on them,
  and the sealer continues a chain whose head was pruned. Which partitions may go (the
  organizations' retention overrides and legal holds) is decided by the application; the
  function enforces the floor that no policy can lower.
* An ``audit.pruned`` row can only be written by the owner (that is, by the function): the
  trigger refuses it from anyone else, so the runtime role cannot forge an anchor.
* Partitions are not granted to ``are_runtime``: the workers reach them only through
  ``audit_log``, whose privileges (INSERT, SELECT, UPDATE of the seal columns) still apply.
"""

from collections.abc import Sequence
from importlib import util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTHS_AHEAD = 3

INDEXES = {
    "ix_audit_log_org_entity": ["organization_id", "entity_type", "entity_id"],
    "ix_audit_log_org_occurred": ["organization_id", "occurred_at"],
    "ix_audit_log_org_subject": ["organization_id", "subject_ref"],
    "ix_audit_log_organization_id": ["organization_id"],
}

GUARD = """
CREATE OR REPLACE FUNCTION are_audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- A pruning anchor is trusted by verification: only the owner may write one.
        IF NEW.action = 'audit.pruned' AND NOT EXISTS (
            SELECT 1 FROM pg_roles r
            WHERE r.rolname = current_user
              AND (r.rolsuper OR r.oid = (SELECT relowner FROM pg_class
                                          WHERE oid = 'public.audit_log'::regclass))
        ) THEN
            RAISE EXCEPTION 'audit.pruned entries are written only by are_audit_drop_partition()'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        -- Sealing: an unsealed row receives its chain columns once, and nothing else changes.
        IF OLD.seq IS NULL AND NEW.seq IS NOT NULL
           AND (to_jsonb(NEW) - ARRAY['seq', 'prev_hash', 'row_hash'])
               = (to_jsonb(OLD) - ARRAY['seq', 'prev_hash', 'row_hash']) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit_log is append-only (row %)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        IF coalesce(current_setting('are.audit_retention', true), '') = 'on' THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'audit_log is append-only (truncate)'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    -- DELETE: moving a row out of the default partition, or the organization is being deleted.
    IF coalesce(current_setting('are.audit_retention', true), '') = 'on'
       OR NOT EXISTS (SELECT 1 FROM organizations WHERE id = OLD.organization_id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (row %)', OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
"""

TRIGGERS = """
CREATE TRIGGER audit_log_append_only
    BEFORE INSERT OR UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION are_audit_log_guard();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION are_audit_log_guard();
"""

CREATE_PARTITION = """
CREATE FUNCTION are_audit_create_partition(p_month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    lo timestamptz := date_trunc('month', p_month::timestamp) AT TIME ZONE 'UTC';
    hi timestamptz := (date_trunc('month', p_month::timestamp) + interval '1 month')
                      AT TIME ZONE 'UTC';
    part text := 'audit_log_p' || to_char(p_month, 'YYYYMM');
    strays bigint;
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO strays FROM audit_log_default WHERE occurred_at >= lo AND occurred_at < hi;
    IF strays > 0 THEN
        -- A new range may not overlap rows held by the default partition: take it out,
        -- create the month, move its rows (same values, so their hashes still match).
        ALTER TABLE audit_log DETACH PARTITION audit_log_default;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF audit_log FOR VALUES FROM (%L) TO (%L)',
                   part, lo, hi);
    EXECUTE format('REVOKE ALL ON %I FROM PUBLIC, are_runtime, are_special_category_reader',
                   part);
    IF strays > 0 THEN
        PERFORM set_config('are.audit_retention', 'on', true);
        EXECUTE format('WITH moved AS (DELETE FROM audit_log_default WHERE occurred_at >= %L '
                       'AND occurred_at < %L RETURNING *) INSERT INTO %I SELECT * FROM moved',
                       lo, hi, part);
        PERFORM set_config('are.audit_retention', 'off', true);
        ALTER TABLE audit_log ATTACH PARTITION audit_log_default DEFAULT;
    END IF;
    RETURN part;
END $$;
"""

ENSURE_PARTITIONS = """
CREATE FUNCTION are_audit_ensure_partitions(p_months_ahead integer DEFAULT 3)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    m date;
    created text;
BEGIN
    IF p_months_ahead < 0 OR p_months_ahead > 36 THEN
        RAISE EXCEPTION 'months ahead must be between 0 and 36, not %', p_months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('are.audit_partitions', 0));
    FOR m IN
        SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date
        FROM audit_log_default
        UNION
        SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i))::date
        FROM generate_series(0, p_months_ahead) AS i
        ORDER BY 1
    LOOP
        created := are_audit_create_partition(m);
        IF created IS NOT NULL THEN
            RETURN NEXT created;
        END IF;
    END LOOP;
END $$;
"""

DROP_PARTITION = """
CREATE FUNCTION are_audit_drop_partition(p_partition text)
RETURNS TABLE (pruned_organization_id uuid, pruned_rows bigint, pruned_ranges jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    part regclass := to_regclass(p_partition);
    lower_bound timestamptz;
    upper_bound timestamptz;
    unsealed bigint;
    org uuid;
BEGIN
    IF part IS NULL OR p_partition = 'audit_log_default' OR NOT EXISTS (
        SELECT 1 FROM pg_inherits WHERE inhrelid = part AND inhparent = 'audit_log'::regclass
    ) THEN
        RAISE EXCEPTION '% is not a monthly partition of audit_log', p_partition
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('are.audit_partitions', 0));
    SELECT substring(b.expr FROM 'FROM \\(''([^'']+)''\\)')::timestamptz,
           substring(b.expr FROM 'TO \\(''([^'']+)''\\)')::timestamptz
    INTO lower_bound, upper_bound
    FROM (SELECT pg_get_expr(c.relpartbound, c.oid) AS expr FROM pg_class c WHERE c.oid = part) b;
    IF upper_bound IS NULL OR upper_bound > now() - interval '365 days' THEN
        RAISE EXCEPTION 'audit rows younger than 365 days are never pruned (% ends %)',
            p_partition, upper_bound USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Serialise with every sealer whose chain runs through this partition.
    FOR org IN EXECUTE format('SELECT DISTINCT organization_id FROM %s ORDER BY 1', part) LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('are.audit_seal:' || org, 0));
    END LOOP;
    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s WHERE seq IS NULL LIMIT 1000) AS u',
                   part) INTO unsealed;
    IF unsealed > 0 THEN
        RAISE EXCEPTION '% holds unsealed audit rows (% or more): seal the chain before pruning',
            p_partition, unsealed USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- One anchor per organization: the maximal runs of consecutive seq that go, each with
    -- the hash of its last row (what the next remaining row's prev_hash points at).
    -- Index probes only: the organizations by a loose scan, each one's first and last seq,
    -- and whether another partition holds a seq in between (a row written late, near the
    -- month's boundary). Only such organizations need a scan of their rows.
    RETURN QUERY EXECUTE format($q$
        WITH RECURSIVE orgs(org_id) AS (
            (SELECT organization_id FROM %1$s ORDER BY organization_id LIMIT 1)
            UNION ALL
            SELECT (SELECT p.organization_id FROM %1$s p WHERE p.organization_id > orgs.org_id
                    ORDER BY p.organization_id LIMIT 1)
            FROM orgs WHERE orgs.org_id IS NOT NULL
        ), per_org AS (
            SELECT org_id AS organization_id,
                   (SELECT min(p.seq) FROM %1$s p WHERE p.organization_id = org_id) AS lo,
                   (SELECT max(p.seq) FROM %1$s p WHERE p.organization_id = org_id) AS hi
            FROM orgs WHERE org_id IS NOT NULL
        ), flagged AS (
            SELECT o.*, EXISTS (
                SELECT 1 FROM audit_log a
                WHERE a.organization_id = o.organization_id AND a.seq BETWEEN o.lo AND o.hi
                  AND (a.occurred_at < %3$L OR a.occurred_at >= %4$L)
            ) AS interleaved
            FROM per_org o
        ), runs AS (
            SELECT f.organization_id, f.lo, f.hi, f.hi - f.lo + 1 AS n,
                   (SELECT x.row_hash FROM %1$s x
                    WHERE x.organization_id = f.organization_id AND x.seq = f.hi) AS hash
            FROM flagged f WHERE NOT f.interleaved
            UNION ALL
            SELECT organization_id, min(seq), max(seq), count(*),
                   (array_agg(row_hash ORDER BY seq DESC))[1]
            FROM (SELECT organization_id, seq, row_hash,
                         seq - row_number() OVER (PARTITION BY organization_id ORDER BY seq)
                             AS grp
                  FROM %1$s
                  WHERE organization_id IN (SELECT organization_id FROM flagged
                                            WHERE interleaved)) AS s
            GROUP BY organization_id, grp
            UNION ALL
            -- Anchors that go with this partition hand their ranges on (counted as 0 rows
            -- now): a month kept longer, say under a legal hold, stays verifiable.
            SELECT a.organization_id, (r->>'lo')::bigint, (r->>'hi')::bigint, 0::bigint,
                   r->>'hash'
            FROM %1$s a, jsonb_array_elements(a.output_refs->'ranges') AS r
            WHERE a.action = 'audit.pruned' AND a.entity_type = 'audit_log'
        ), anchors AS (
            INSERT INTO audit_log (organization_id, actor_type, action, entity_type, output_refs)
            SELECT organization_id, 'system', 'audit.pruned', 'audit_log',
                   jsonb_build_object(
                       'partition', %2$L, 'deleted', sum(n),
                       'ranges', jsonb_agg(jsonb_build_object('lo', lo, 'hi', hi, 'hash', hash)
                                           ORDER BY lo))
            FROM runs GROUP BY organization_id
            RETURNING organization_id, (output_refs->>'deleted')::bigint, output_refs->'ranges'
        )
        SELECT * FROM anchors
    $q$, part, p_partition, lower_bound, upper_bound);
    EXECUTE format('ALTER TABLE audit_log DETACH PARTITION %s', part);
    EXECUTE format('DROP TABLE %s', part);
END $$;
"""

FUNCTIONS = (
    "are_audit_create_partition(date)",
    "are_audit_ensure_partitions(integer)",
    "are_audit_drop_partition(text)",
)


def _columns_and_constraints_of(source: str, target: str, partitioned: bool) -> None:
    """``target`` with ``source``'s columns, defaults and CHECKs (same order, same names)."""
    partition = " PARTITION BY RANGE (occurred_at)" if partitioned else ""
    op.execute(
        f"CREATE TABLE {target} (LIKE {source} INCLUDING DEFAULTS INCLUDING CONSTRAINTS){partition}"
    )


def _retire(table: str, new_name: str) -> None:
    """Rename the old table and free every name the new one needs (indexes, keys, triggers)."""
    op.execute(f"ALTER TABLE {table} RENAME TO {new_name}")
    op.execute(f"DROP TRIGGER IF EXISTS audit_log_append_only ON {new_name}")
    op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_truncate ON {new_name}")
    for name in [*INDEXES, "ix_audit_log_unsealed", "ix_audit_log_org_seq"]:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    for constraint in (
        "pk_audit_log",
        "uq_audit_log_organization_id_seq",
        "fk_audit_log_organization_id_organizations",
    ):
        op.execute(f"ALTER TABLE {new_name} DROP CONSTRAINT IF EXISTS {constraint}")


def _keys_indexes_and_grants(*, primary_key: list[str], unique_seq: bool) -> None:
    op.create_primary_key("pk_audit_log", "audit_log", primary_key)
    op.create_foreign_key(
        "fk_audit_log_organization_id_organizations",
        "audit_log",
        "organizations",
        ["organization_id"],
        ["id"],
        ondelete="CASCADE",
    )
    if unique_seq:
        op.create_unique_constraint(
            "uq_audit_log_organization_id_seq", "audit_log", ["organization_id", "seq"]
        )
    else:
        op.create_index("ix_audit_log_org_seq", "audit_log", ["organization_id", "seq"])
    for name, columns in INDEXES.items():
        op.create_index(name, "audit_log", columns)
    op.create_index(
        "ix_audit_log_unsealed",
        "audit_log",
        ["organization_id", "occurred_at"],
        postgresql_where=sa.text("seq IS NULL"),
    )
    op.execute(
        """
        GRANT SELECT, INSERT ON audit_log TO are_runtime;
        REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM are_runtime;
        GRANT UPDATE (seq, prev_hash, row_hash) ON audit_log TO are_runtime;
        """
    )


def upgrade() -> None:
    _retire("audit_log", "audit_log_unpartitioned")
    _columns_and_constraints_of("audit_log_unpartitioned", "audit_log", partitioned=True)
    _keys_indexes_and_grants(primary_key=["id", "occurred_at"], unique_seq=False)
    op.execute(GUARD)
    op.execute(TRIGGERS)
    op.execute("CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT")
    op.execute("REVOKE ALL ON audit_log_default FROM PUBLIC, are_runtime")
    op.execute("INSERT INTO audit_log SELECT * FROM audit_log_unpartitioned")
    op.execute("DROP TABLE audit_log_unpartitioned")
    op.execute(CREATE_PARTITION)
    op.execute(ENSURE_PARTITIONS)
    op.execute(DROP_PARTITION)
    for function in FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION are_audit_ensure_partitions(integer) TO are_runtime")
    op.execute("GRANT EXECUTE ON FUNCTION are_audit_drop_partition(text) TO are_runtime")
    op.execute("DROP FUNCTION are_audit_prune(uuid, timestamptz)")
    op.execute(f"SELECT are_audit_ensure_partitions({MONTHS_AHEAD})")


def _revision_0003() -> object:
    path = Path(__file__).with_name("20261124_0003_compliance.py")
    spec = util.spec_from_file_location("are_migration_0003", path)
    assert spec is not None
    assert spec.loader is not None
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    for function in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    _retire("audit_log", "audit_log_partitioned")
    _columns_and_constraints_of("audit_log_partitioned", "audit_log", partitioned=False)
    op.execute("INSERT INTO audit_log SELECT * FROM audit_log_partitioned")
    op.execute("DROP TABLE audit_log_partitioned CASCADE")
    _keys_indexes_and_grants(primary_key=["id"], unique_seq=True)
    op.execute(TRIGGERS)  # the guard keeps refusing forged anchors on the plain table too
    prune = _revision_0003()
    op.execute(prune.AUDIT_PRUNE)  # type: ignore[attr-defined]
    op.execute("REVOKE ALL ON FUNCTION are_audit_prune(uuid, timestamptz) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION are_audit_prune(uuid, timestamptz) TO are_runtime")
