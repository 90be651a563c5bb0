package store

import (
	"context"
	"fmt"
)

// MetricCounts is the backlog the worker's /metrics shows, read at each scrape.
type MetricCounts struct {
	// Due: outgoing messages waiting to be sent (queued or restored, not do-not-send).
	Due int64 `db:"due"`
	// InFlight: messages at Digipoort without a final status yet.
	InFlight int64 `db:"in_flight"`
	// NeedsAction: messages an operator must look at (open ONB included).
	NeedsAction int64 `db:"needs_action"`
	// OpenONB: unknown replies not yet linked or closed.
	OpenONB int64 `db:"open_onb"`
	// WebhooksPending: webhook events still to be posted.
	WebhooksPending int64 `db:"webhooks_pending"`
	// WebhooksFailed: webhook events given up on (the receiver kept refusing, or its
	// endpoint was disabled).
	WebhooksFailed int64 `db:"webhooks_failed"`
}

// MetricCounts counts the backlog in one statement. A scrape comes every few seconds
// from every Prometheus that watches the worker, so each count reads only a partial
// index whose rows are the ones counted (messages_due and messages_in_flight of 00001
// and 00008, messages_needs_action and webhook_events_failed of 00010, messages_onb_sweep,
// webhook_events_pending), never the whole table: the predicates are written out as the
// indexes have them, so that the planner can prove they match.
func (s *Store) MetricCounts(ctx context.Context) (MetricCounts, error) {
	var c MetricCounts
	if err := s.db.GetContext(ctx, &c, metricCountsQuery); err != nil {
		return MetricCounts{}, fmt.Errorf("count the backlog for the metrics: %w", err)
	}
	return c, nil
}

const metricCountsQuery = `SELECT
	(SELECT count(*) FROM messages WHERE direction = 'out' AND status IN ('queued', 'ready_to_resend') AND NOT do_not_send) AS due,
	(SELECT count(*) FROM messages
	  WHERE direction = 'out' AND channel = 'digipoort' AND status IN ('sent', 'receipt_confirmed', 'in_progress')) AS in_flight,
	(SELECT count(*) FROM messages WHERE needs_action) AS needs_action,
	(SELECT count(*) FROM messages WHERE subtype = 'ONB' AND needs_action) AS open_onb,
	(SELECT count(*) FROM webhook_events WHERE state = 'pending') AS webhooks_pending,
	(SELECT count(*) FROM webhook_events WHERE state = 'failed') AS webhooks_failed`
