-- +goose Up
-- SEPA payment orders (pain.001) sent to each environment's bank over SFTP, and the
-- bank's status reports (pain.002) read back (issue 14). Forward-only; every statement
-- is guarded so that re-running the file by hand changes nothing.

-- The bank is a third way a message travels. The check 00008 made names the channels
-- it knew; it is replaced (by its name, which Postgres gave it) only while it does not
-- name the bank yet.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'messages'::regclass AND conname = 'messages_channel_check'
                     AND pg_get_constraintdef(oid) LIKE '%bank%') THEN
        ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_channel_check;
        ALTER TABLE messages ADD CONSTRAINT messages_channel_check CHECK (channel IN ('digipoort', 'email', 'bank'));
    END IF;
END
$$;
-- +goose StatementEnd

-- An environment's host-to-host connection to its bank. The private key (PEM) is
-- sealed with KOERIER_SECRET_KEY (package internal/secrets) before it gets here: a copy
-- of the database alone cannot log in at the bank. The bank's host key is pinned: an
-- authorized_keys line, or its SHA256: fingerprint as ssh-keygen -l prints it; a server
-- that shows another key is refused, never trusted on first use.
CREATE TABLE IF NOT EXISTS environment_bank_profiles (
    environment_id bigint PRIMARY KEY REFERENCES environments (id),
    host           text NOT NULL CHECK (host <> '' AND char_length(host) <= 253),
    port           integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    sftp_user      text NOT NULL CHECK (sftp_user <> '' AND char_length(sftp_user) <= 200),
    private_key    bytea NOT NULL,
    host_key       text NOT NULL CHECK (host_key <> ''),
    -- Payment files are uploaded to upload_dir; status reports are read from
    -- download_dir and moved to processed_dir once stored (never deleted); archive_dir
    -- is where the bank moves the files it has taken, where a look-up after an
    -- uncertain upload also searches.
    upload_dir     text NOT NULL CHECK (upload_dir <> ''),
    download_dir   text NOT NULL CHECK (download_dir <> ''),
    processed_dir  text NOT NULL CHECK (processed_dir <> ''),
    archive_dir    text NOT NULL DEFAULT '',
    -- A profile on the local bank simulator (`--local-bank`).
    local          boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- Reports moved into the folder they are read from would be read again and again.
    CHECK (processed_dir <> download_dir)
);

-- What a queued payment order is, beside the message that holds the file. A bank
-- recognises a file it has seen by its MsgId and refuses it (DUPL), so one environment
-- never uses a MsgId twice: the UNIQUE below decides that, also for two queue calls at
-- once, and is the index a status report is linked by (OrgnlMsgId). Clean-up removes
-- the row with its message.
CREATE TABLE IF NOT EXISTS payments (
    message_number bigint PRIMARY KEY REFERENCES messages (number) ON DELETE CASCADE,
    environment_id bigint NOT NULL REFERENCES environments (id),
    msg_id         text NOT NULL CHECK (msg_id <> '' AND char_length(msg_id) <= 35),
    -- The pain.001 version (001.001.03 or 001.001.09).
    version        text NOT NULL,
    UNIQUE (environment_id, msg_id)
);

-- Each credit transfer of a payment order, in file order, with the status the bank
-- last reported for it: a rejection keeps its reason code (AC01, AM04, …) and the text
-- that explains it, for the environment to see. status '' is not reported yet.
CREATE TABLE IF NOT EXISTS payment_transactions (
    message_number bigint NOT NULL REFERENCES payments (message_number) ON DELETE CASCADE,
    end_to_end_id  text NOT NULL CHECK (end_to_end_id <> ''),
    position       integer NOT NULL,
    amount         numeric(14, 2) NOT NULL CHECK (amount > 0),
    currency       text NOT NULL,
    creditor_name  text NOT NULL DEFAULT '',
    creditor_iban  text NOT NULL DEFAULT '',
    status         text NOT NULL DEFAULT '',
    reason_code    text NOT NULL DEFAULT '',
    reason_text    text NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- A status report names a transaction by its EndToEndId (OrgnlEndToEndId).
    PRIMARY KEY (message_number, end_to_end_id)
);
