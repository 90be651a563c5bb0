-- +goose Up
-- Clean-up counts a message's age from its last status change, not from when it was
-- queued: a message restored yesterday is about to be sent again (rule 8 in
-- docs/rules.md). Its page query filters on last_status_change.
CREATE INDEX IF NOT EXISTS messages_cleanup_age ON messages (last_status_change);
DROP INDEX IF EXISTS messages_cleanup;

-- A try of a delivery that did not reach Digipoort: Digipoort answered with a fault of
-- its own, or an operator decided so after the look-up gave up (rule 11). The next
-- try of the same attempt reopens the row.
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS closed_at timestamptz;

-- Deliveries whose outcome is not known (rule 11): few at any time, and looked at by
-- every delivery (one per subject and berichtsoort at a time), every batch of incoming
-- documents (evidence of a lost answer) and clean-up.
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (message_number)
    WHERE kenmerk IS NULL AND failed_at IS NULL AND closed_at IS NULL;
