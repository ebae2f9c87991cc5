-- Tessera schema, version 2 (src/store/postgres.rs): the change feed's state, one row.
--
-- `heartbeat_at` is set to the primary's clock by every node's periodic sweep. A node reads it
-- from its local replica: its age is how far behind that replica is (plus at most one sweep
-- period), which catches a standby that still answers but stopped replaying.
--
-- `pruned_through` is the highest `seq` that retention has deleted: a poller whose cursor is
-- below it has missed changes, and drops its cached keys instead of trusting them.
CREATE TABLE tessera_feed_state (
    id              smallint    PRIMARY KEY CHECK (id = 1),
    heartbeat_at    timestamptz NOT NULL DEFAULT now(),
    pruned_through  bigint      NOT NULL DEFAULT 0 CHECK (pruned_through >= 0)
);
INSERT INTO tessera_feed_state (id) VALUES (1);
