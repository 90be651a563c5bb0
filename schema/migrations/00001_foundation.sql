-- Koerier's foundation. Forward-only: there is no Down section on purpose. Every
-- statement is guarded so that re-running the file by hand changes nothing.
-- +goose Up

-- The explicit order of statuses (domain.OutgoingStatuses); a test keeps the two equal.
-- "Highest status wins" is decided in SQL against this table so that two replies
-- arriving at once cannot lower a status.
CREATE TABLE IF NOT EXISTS message_statuses (
    status text PRIMARY KEY,
    rank   integer NOT NULL UNIQUE
);
INSERT INTO message_statuses (status, rank) VALUES
    ('received', 0),
    ('queued', 1),
    ('ready_to_resend', 2),
    ('send_failed', 3),
    ('sent', 4),
    ('receipt_confirmed', 5),
    ('in_progress', 6),
    ('accepted', 7),
    ('rejected', 8),
    ('failed', 9)
ON CONFLICT (status) DO NOTHING;

CREATE TABLE IF NOT EXISTS environments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    auto_send    boolean NOT NULL DEFAULT false,
    auto_process boolean NOT NULL DEFAULT false,
    email_from   text NOT NULL DEFAULT '',
    smtp_address text NOT NULL DEFAULT '',
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    removed_at   timestamptz,
    CHECK (active = (removed_at IS NULL))
);

-- Message numbers look like references people can read aloud, and never repeat.
CREATE TABLE IF NOT EXISTS messages (
    number             bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000001) PRIMARY KEY,
    direction          text NOT NULL CHECK (direction IN ('out', 'in')),
    environment_id     bigint REFERENCES environments (id),
    message_type       text NOT NULL,
    subtype            text NOT NULL DEFAULT '',
    subject            text NOT NULL DEFAULT '',
    period             text NOT NULL DEFAULT '',
    declaration_key    text,
    version            integer,
    client_reference   text,
    berichtsoort       text NOT NULL DEFAULT '',
    identity_type      text NOT NULL DEFAULT '',
    fiscal             boolean NOT NULL DEFAULT false,
    status             text NOT NULL REFERENCES message_statuses (status),
    do_not_send        boolean NOT NULL DEFAULT false,
    needs_action       boolean NOT NULL DEFAULT false,
    needs_action_reason text NOT NULL DEFAULT '',
    -- The delivery attempt whose replies count; a restore starts the next one.
    attempt            integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    queued_at          timestamptz NOT NULL DEFAULT now(),
    last_status_change timestamptz NOT NULL DEFAULT now(),
    -- What the originating environment sees; it moves on "process".
    env_status         text NOT NULL REFERENCES message_statuses (status),
    env_status_changed timestamptz NOT NULL DEFAULT now(),
    processed_at       timestamptz,
    reported_status    text REFERENCES message_statuses (status),
    -- An incoming reply document points at the outgoing message it answers.
    reply_to           bigint REFERENCES messages (number) ON DELETE CASCADE,
    pickup_kenmerk     text,
    berichtkenmerk     text,
    memo               text NOT NULL DEFAULT '',
    CHECK (direction = 'in' OR (declaration_key IS NOT NULL AND version >= 1 AND environment_id IS NOT NULL)),
    CHECK (direction = 'out' OR (declaration_key IS NULL AND version IS NULL)),
    CHECK (subtype <> 'ONB' OR (direction = 'in' AND reply_to IS NULL)),
    CHECK (char_length(subject) <= 35),
    CHECK (char_length(memo) <= 4000)
);
-- Rule 3: one message per version of a declaration.
CREATE UNIQUE INDEX IF NOT EXISTS messages_declaration_version ON messages (declaration_key, version);
-- Rule 1: queue is idempotent per environment and client reference.
CREATE UNIQUE INDEX IF NOT EXISTS messages_client_reference ON messages (environment_id, client_reference) WHERE client_reference IS NOT NULL;
-- A reply document fetched twice is stored once.
CREATE UNIQUE INDEX IF NOT EXISTS messages_pickup ON messages (pickup_kenmerk, berichtkenmerk) WHERE pickup_kenmerk IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_environment ON messages (environment_id, number);
CREATE INDEX IF NOT EXISTS messages_reply_to ON messages (reply_to) WHERE reply_to IS NOT NULL;
-- send/receive: what is due, what is in flight.
CREATE INDEX IF NOT EXISTS messages_due ON messages (number) WHERE direction = 'out' AND status IN ('queued', 'ready_to_resend') AND NOT do_not_send;
CREATE INDEX IF NOT EXISTS messages_in_flight ON messages (number) WHERE direction = 'out' AND status IN ('sent', 'receipt_confirmed', 'in_progress');
CREATE INDEX IF NOT EXISTS messages_unprocessed ON messages (environment_id, number) WHERE direction = 'out' AND env_status <> status;
CREATE INDEX IF NOT EXISTS messages_cleanup ON messages (queued_at);
CREATE INDEX IF NOT EXISTS messages_onb ON messages (number) WHERE subtype = 'ONB';

CREATE TABLE IF NOT EXISTS attachments (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_number bigint NOT NULL REFERENCES messages (number) ON DELETE CASCADE,
    file_name      text NOT NULL CHECK (file_name <> '' AND char_length(file_name) <= 80),
    mime_type      text NOT NULL CHECK (mime_type <> ''),
    size           bigint NOT NULL CHECK (size > 0 AND size <= 20971520),
    sha256         bytea NOT NULL CHECK (octet_length(sha256) = 32),
    content        bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (octet_length(content) = size)
);
CREATE INDEX IF NOT EXISTS attachments_message ON attachments (message_number);

-- One row per delivery attempt: the aanleverkenmerk Koerier gave and the kenmerk
-- Digipoort returned. A row without kenmerk is a delivery whose outcome is unknown
-- (the worker died mid-call): it must be looked up at Digipoort before sending again.
CREATE TABLE IF NOT EXISTS deliveries (
    message_number  bigint NOT NULL REFERENCES messages (number) ON DELETE CASCADE,
    attempt         integer NOT NULL CHECK (attempt >= 1),
    aanleverkenmerk text NOT NULL UNIQUE CHECK (char_length(aanleverkenmerk) <= 40),
    kenmerk         text UNIQUE CHECK (char_length(kenmerk) <= 40),
    started_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    failed_at       timestamptz,
    last_error      text NOT NULL DEFAULT '',
    last_error_at   timestamptz,
    PRIMARY KEY (message_number, attempt),
    CHECK (kenmerk IS NULL OR delivered_at IS NOT NULL)
);

-- Every reply is kept, whether it raised the status or not.
CREATE TABLE IF NOT EXISTS status_events (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_number    bigint NOT NULL REFERENCES messages (number) ON DELETE CASCADE,
    attempt           integer NOT NULL,
    kenmerk           text NOT NULL,
    code              text NOT NULL,
    status            text NOT NULL REFERENCES message_statuses (status),
    occurred_at       timestamptz NOT NULL,
    description       text NOT NULL DEFAULT '',
    error_code        text NOT NULL DEFAULT '',
    error_description text NOT NULL DEFAULT '',
    details           text NOT NULL DEFAULT '',
    received_at       timestamptz NOT NULL DEFAULT now(),
    -- false for a reply to an earlier attempt: kept, but it cannot move the status.
    applied           boolean NOT NULL,
    signaled          boolean NOT NULL DEFAULT false
);
-- The same status fetched again (every receive looks back 30 days) is stored once.
CREATE UNIQUE INDEX IF NOT EXISTS status_events_once ON status_events (kenmerk, code, occurred_at);
CREATE INDEX IF NOT EXISTS status_events_message ON status_events (message_number, id);
CREATE INDEX IF NOT EXISTS status_events_unsignaled ON status_events (message_number) WHERE NOT signaled;

CREATE TABLE IF NOT EXISTS communication_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    environment_id bigint REFERENCES environments (id),
    -- No foreign key: the log outlives clean-up, which removes the message.
    message_number bigint,
    step           text NOT NULL,
    level          char(1) NOT NULL CHECK (level IN ('I', 'F')),
    description    text NOT NULL,
    information    text NOT NULL DEFAULT '',
    memo           text NOT NULL DEFAULT '',
    -- An activity that is retried writes its line once.
    dedupe_key     text UNIQUE
);
CREATE INDEX IF NOT EXISTS communication_log_at ON communication_log (at);
CREATE INDEX IF NOT EXISTS communication_log_environment ON communication_log (environment_id, at);
CREATE INDEX IF NOT EXISTS communication_log_message ON communication_log (message_number, at);
CREATE INDEX IF NOT EXISTS communication_log_level ON communication_log (level, at);
CREATE INDEX IF NOT EXISTS communication_log_step ON communication_log (step, at);

-- Rule 6: one send/receive at a time; the lock frees itself when expires_at passes.
CREATE TABLE IF NOT EXISTS locks (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    CHECK (expires_at > acquired_at)
);
