-- The role KEDA's PostgreSQL scaler connects as (the are-keda-ledger Secret). It can read the
-- four columns the scaler queries count on, and nothing else: no arguments, no results, no
-- tenant data. Run as the schema owner after `are-workers db upgrade`; set a real password.
CREATE ROLE are_keda LOGIN PASSWORD 'REPLACE';
GRANT USAGE ON SCHEMA public TO are_keda;
GRANT SELECT (queue_class, queue, status, available_at) ON task_runs TO are_keda;
