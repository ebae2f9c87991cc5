-- Tessera schema, version 2 (src/store/postgres/): the change feed's heartbeat, retention
-- and numbering time. Additive: binaries of schema 1 run against it unchanged.

-- Set to the primary's clock by every node's periodic sweep, in a transaction of its own that
-- does not wait for a synchronous standby. A node reads it from its local replica: its age is
-- how far behind that replica is (plus at most one sweep period), which catches a standby
-- that still answers but stopped replaying. A table of its own, so that no write waiting for
-- a synchronous standby ever holds a lock the heartbeat needs.
CREATE TABLE tessera_heartbeat (
    id  smallint    PRIMARY KEY CHECK (id = 1),
    at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tessera_heartbeat (id) VALUES (1);

-- `pruned_through` is the highest `seq` retention has deleted: a poller whose cursor is below
-- it has missed changes, and drops its cached keys instead of trusting them.
CREATE TABLE tessera_feed_state (
    id              smallint PRIMARY KEY CHECK (id = 1),
    pruned_through  bigint   NOT NULL DEFAULT 0 CHECK (pruned_through >= 0)
);
INSERT INTO tessera_feed_state (id) VALUES (1);

-- When the sequencer numbered a change (`at` is when its writer's transaction began).
-- Retention counts from here: a change is deleted only once pollers could have read it for
-- the whole retention. NULL for rows numbered by schema-1 binaries (then `at` counts).
ALTER TABLE tessera_changes ADD COLUMN numbered_at timestamptz;
