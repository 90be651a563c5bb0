-- +goose Up
-- Proof of filing: every signed Digipoort response about a message, exactly as it was
-- received. A signed aanleverResponse proves when Digipoort took a return in
-- (tijdstempelAangeleverd); signed status responses prove what happened to it. Only the
-- original bytes still verify, so the body is kept as received, never re-serialised.
--
-- Clean-up (rule 8 in docs/rules.md) removes a message with its proofs (ON DELETE
-- CASCADE), like its attachments and replies: what outlives the message's retention is
-- what an operator exported with `starter digipoort proof` first.
CREATE TABLE IF NOT EXISTS signed_responses (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_number     bigint NOT NULL REFERENCES messages (number) ON DELETE CASCADE,
    attempt            integer NOT NULL CHECK (attempt >= 1),
    -- NULL when a delivery's answer verified but named no usable kenmerk.
    kenmerk            text CHECK (char_length(kenmerk) <= 40),
    operation          text NOT NULL CHECK (operation ~ '^[A-Za-z]{1,80}$'),
    request_message_id text NOT NULL DEFAULT '' CHECK (char_length(request_message_id) <= 200),
    received_at        timestamptz NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    body               bytea NOT NULL CHECK (octet_length(body) > 0),
    -- Computed by Postgres from the body itself, so it cannot disagree with it.
    sha256             bytea GENERATED ALWAYS AS (sha256(body)) STORED
);
-- An activity that is retried records the same response once; two different
-- responses are both kept. It is also the index a message's proofs are read by.
CREATE UNIQUE INDEX IF NOT EXISTS signed_responses_once ON signed_responses (message_number, sha256);
