package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// StaleWebhookMessages lists messages with webhook events pending since before the
// cut-off: their workflow may be gone (terminated, or started before webhooks
// existed), and send/receive asks it, with start, to deliver them. The pending
// events' partial index keeps this a scan of what is pending only.
func (s *Store) StaleWebhookMessages(ctx context.Context, before time.Time, limit int) ([]int64, error) {
	out := []int64{}
	if err := s.db.SelectContext(ctx, &out, `SELECT DISTINCT message_number FROM webhook_events
		WHERE state = 'pending' AND created_at < $1 ORDER BY message_number LIMIT $2`, before, limit); err != nil {
		return nil, fmt.Errorf("list messages with stale webhook events: %w", err)
	}
	return out, nil
}

// ExpireWebhookEvents fails the events still pending since before the cut-off (the
// sender's retries end long before it), each with an F line: an event no delivery took
// in that time would otherwise show as pending forever.
func (s *Store) ExpireWebhookEvents(ctx context.Context, before time.Time, why string) (int, error) {
	var failed []struct {
		ID     string `db:"id"`
		Number int64  `db:"message_number"`
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.SelectContext(ctx, &failed, `UPDATE webhook_events SET state = 'failed', last_error = $2
			WHERE state = 'pending' AND created_at < $1 RETURNING id, message_number`, before, truncateRunes(why, maxWebhookErrorLen)); err != nil {
			return err
		}
		logs := make([]LogEntry, 0, len(failed))
		for _, f := range failed {
			logs = append(logs, webhookFailedLine(f.Number, f.ID, why))
		}
		return writeLogs(ctx, tx, logs)
	})
	if err != nil {
		return 0, fmt.Errorf("expire webhook events pending since %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	return len(failed), nil
}
