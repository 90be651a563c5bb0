-- +goose Up
-- The worker's /metrics counts the messages that need action and the webhook events
-- given up on at every scrape (store.MetricCounts). Both are few among many rows, and
-- without an index each count would read the whole table every few seconds. Forward-
-- only; guarded, so re-running the file by hand changes nothing.
CREATE INDEX IF NOT EXISTS messages_needs_action ON messages (number) WHERE needs_action;
CREATE INDEX IF NOT EXISTS webhook_events_failed ON webhook_events (message_number) WHERE state = 'failed';
