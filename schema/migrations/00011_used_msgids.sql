-- +goose Up
-- Rule 23: a MsgId is never used twice by one environment — a bank refuses a file whose
-- MsgId it has seen (DUPL), and some banks pay a resent file again. The payments row
-- goes with its message when clean-up removes it; this record of every MsgId an
-- environment used does not, so a file reusing an old MsgId is still refused at queue
-- time. Forward-only; every statement is guarded so that re-running the file by hand
-- changes nothing.
CREATE TABLE IF NOT EXISTS used_msg_ids (
    environment_id bigint NOT NULL REFERENCES environments (id),
    msg_id         text   NOT NULL,
    -- The message that used it; it may have been cleaned up since (no reference).
    message_number bigint NOT NULL,
    used_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment_id, msg_id)
);
INSERT INTO used_msg_ids (environment_id, msg_id, message_number)
SELECT environment_id, msg_id, message_number FROM payments
ON CONFLICT (environment_id, msg_id) DO NOTHING;
