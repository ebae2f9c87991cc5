-- Tessera schema, version 1 (src/store/postgres/). Key bytes are only ever stored sealed
-- (AES-256-GCM under a per-tenant key derived from the master key): a dump reveals no key.

CREATE TABLE tessera_keys (
    tenant      text     NOT NULL,
    kid         bytea    NOT NULL CHECK (length(kid) = 16),
    content_id  text     NOT NULL,
    -- TrackType in its declared order (SD, HD, UHD1, UHD2, AUDIO), so ORDER BY sorts as Rust does.
    track       smallint CHECK (track BETWEEN 0 AND 4),
    period      bigint   CHECK (period >= 0),
    created_at  bigint   NOT NULL,
    revoked_at  bigint,
    sealed      bytea    NOT NULL,
    PRIMARY KEY (tenant, kid)
);
CREATE INDEX tessera_keys_by_content ON tessera_keys (tenant, content_id);

-- The change feed. Rows are written in the transaction that makes the change, with no `seq`;
-- a sequencer (one at a time, under an advisory lock) numbers committed rows afterwards, so
-- `seq` order is commit order and a poller reading `seq > cursor` never skips a change that
-- committed late. Pollers read it from their local replica.
CREATE SEQUENCE tessera_change_seq;
CREATE TABLE tessera_changes (
    id        bigserial PRIMARY KEY,
    seq       bigint UNIQUE,
    tenant    text     NOT NULL,
    kid       bytea    NOT NULL,
    kind      smallint NOT NULL, -- 0 created, 1 revoked
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tessera_changes_unsequenced ON tessera_changes (id) WHERE seq IS NULL;

CREATE TABLE tessera_meta (
    name   text PRIMARY KEY,
    value  bytea NOT NULL
);

-- Shared replay-prevention state for tokens with jti / max_uses.
CREATE TABLE tessera_token_uses (
    tenant      text   NOT NULL,
    jti         text   NOT NULL,
    uses        int    NOT NULL,
    expires_at  bigint NOT NULL,
    PRIMARY KEY (tenant, jti)
);
CREATE INDEX tessera_token_uses_expiry ON tessera_token_uses (expires_at);
