-- +goose Up
-- A kenmerk Digipoort refuses status requests for (STS100 "kenmerk onbekend": it forgot
-- the process, or never had it) is asked again with back-off, not on every send/receive
-- (rule 10 in docs/rules.md). Kept per delivery: a restore starts a new attempt, and with
-- it a new delivery that is asked at once. Forward-only; every statement is guarded so
-- that re-running the file by hand changes nothing.
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS status_refusals integer NOT NULL DEFAULT 0 CHECK (status_refusals >= 0);
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS status_ask_after timestamptz;

-- Only deliveries in back-off have a next ask: a partial index keeps them listable
-- ("which messages is Koerier not asking about now?") without indexing every delivery.
CREATE INDEX IF NOT EXISTS deliveries_status_ask_after ON deliveries (status_ask_after) WHERE status_ask_after IS NOT NULL;
