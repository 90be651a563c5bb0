-- +goose Up
-- The environments' front door (rule 13 in docs/rules.md): API tokens, one webhook
-- endpoint per environment, and the outbox of status events pushed to it. Forward-only;
-- every statement is guarded so that re-running the file by hand changes nothing.

-- A token is shown once and only its SHA-256 is kept: a copy of the database does not
-- hand out the environments' keys. Every request looks its token up by that hash.
CREATE TABLE IF NOT EXISTS api_tokens (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    environment_id bigint NOT NULL REFERENCES environments (id),
    token_sha256   bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
CREATE INDEX IF NOT EXISTS api_tokens_environment ON api_tokens (environment_id, id);

-- One endpoint per environment; registering again replaces its URL and secret in place,
-- so events still pending go to the new address. The secret signs (HMAC) and must be
-- kept as it is.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    environment_id  bigint NOT NULL UNIQUE REFERENCES environments (id),
    url             text NOT NULL CHECK (url ~ '^https?://' AND char_length(url) <= 2000),
    secret          text NOT NULL CHECK (secret ~ '^whsec_'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz,
    disabled_reason text NOT NULL DEFAULT ''
);

-- The outbox: an event is written in the transaction that changes what the environment
-- sees (store.Process), so a crash between the change and the post loses nothing. The
-- id is stable across retries: a receiver drops what it has seen. The payload is kept as
-- the exact text posted (json, not jsonb, which would reorder it).
CREATE TABLE IF NOT EXISTS webhook_events (
    id             text PRIMARY KEY,
    message_number bigint NOT NULL REFERENCES messages (number) ON DELETE CASCADE,
    seq            integer NOT NULL CHECK (seq >= 1),
    endpoint_id    bigint NOT NULL REFERENCES webhook_endpoints (id),
    payload        json NOT NULL,
    state          text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts       integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error     text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz,
    CHECK ((state = 'sent') = (sent_at IS NOT NULL))
);
-- A message's events in order (the sender, the counts, the next sequence number).
CREATE UNIQUE INDEX IF NOT EXISTS webhook_events_message ON webhook_events (message_number, seq);
-- What is still to be posted: few rows at any time. The sender reads a message's by it;
-- disabling an endpoint fails its pending events by scanning just these.
CREATE INDEX IF NOT EXISTS webhook_events_pending ON webhook_events (message_number, seq) WHERE state = 'pending';

-- Also read per message or per token, by indexes that exist already: a token by its hash
-- (the UNIQUE above), an environment's messages page by page (messages_environment on
-- (environment_id, number), 00001), a message's reply documents (messages_reply_to) and
-- their Digipoort process (deliveries' UNIQUE kenmerk).
