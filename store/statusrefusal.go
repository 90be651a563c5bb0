package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"koerier/domain"
)

// A kenmerk whose status requests Digipoort refuses (rule 10 in docs/rules.md) is asked
// again after StatusRefusalFirstWait, then after twice as long each time, at most
// StatusRefusalMaxWait: Digipoort may answer again (a hiccup, a simulator restarted on
// its state), but asking on every send/receive only adds refusals.
const (
	StatusRefusalFirstWait = 15 * time.Minute
	StatusRefusalMaxWait   = 24 * time.Hour
)

// StatusRefusal is what RecordStatusRefusal recorded.
type StatusRefusal struct {
	Number  int64
	Attempt int
	Status  domain.Status
	// Refusals counts the refusals of this delivery in a row; First is Refusals == 1,
	// the one that marked the message needs-action and wrote the F line.
	Refusals int
	First    bool
	// NextAsk is when InFlightDeliveries lists the delivery again (database clock).
	NextAsk time.Time
}

// RecordStatusRefusal records that Digipoort refused the status request of the current
// delivery of message number (attempt, kenmerk), and when to ask next. The first refusal
// in a row also marks the message needs-action with reason and writes it as one F line
// with information, in the same transaction; later ones change only the next ask, so the
// message is marked and logged once however long Digipoort keeps refusing. Nothing else
// changes: the message stays in flight, neither lost nor closed. A delivery that is no
// longer the message's current one (restored meanwhile) is left alone: zero result.
func (s *Store) RecordStatusRefusal(ctx context.Context, number int64, attempt int, kenmerk, reason, information string) (StatusRefusal, error) {
	r := StatusRefusal{Number: number, Attempt: attempt}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// The exponent is capped before power() so that a delivery refused for years
		// cannot overflow; 2^7 × 15 minutes is past the one-day cap already.
		row := struct {
			Refusals int           `db:"status_refusals"`
			NextAsk  time.Time     `db:"status_ask_after"`
			Status   domain.Status `db:"status"`
		}{}
		err := tx.GetContext(ctx, &row, `
			UPDATE deliveries d SET status_refusals = d.status_refusals + 1,
				status_ask_after = now() + make_interval(secs => least($4::float8 * power(2, least(d.status_refusals, 20)), $5::float8))
			FROM messages m
			WHERE d.message_number = $1 AND d.attempt = $2 AND d.kenmerk = $3 AND m.number = d.message_number AND m.attempt = d.attempt
			RETURNING d.status_refusals, d.status_ask_after, m.status`,
			number, attempt, kenmerk, StatusRefusalFirstWait.Seconds(), StatusRefusalMaxWait.Seconds())
		if isNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		r.Refusals, r.NextAsk, r.Status, r.First = row.Refusals, row.NextAsk, row.Status, row.Refusals == 1
		if !r.First {
			return nil
		}
		// The reason starts with statusRefusalPrefix, so that ClearStatusRefusals knows its own.
		if p := statusRefusalPrefix(number, kenmerk); !strings.HasPrefix(reason, p) {
			reason = p + ": " + reason
		}
		// A message that already needs action for another reason (its environment gone,
		// an undecided delivery) keeps that reason: it is the operator's to clear, and
		// ClearStatusRefusals must not take it away when Digipoort answers again. The
		// refusal is in the F line.
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET needs_action = true,
			needs_action_reason = CASE WHEN needs_action THEN needs_action_reason ELSE $2 END WHERE number = $1`, number, reason); err != nil {
			return err
		}
		return writeLog(ctx, tx, LogEntry{MessageNumber: &number, Step: domain.StepReceive, Level: domain.LevelError, Description: reason,
			Information: information, DedupeKey: fmt.Sprintf("status-refused/%d/%d", number, attempt)})
	})
	if err != nil {
		return StatusRefusal{}, fmt.Errorf("record that Digipoort refused the statuses of message %d (kenmerk %s): %w", number, kenmerk, err)
	}
	return r, nil
}

// statusRefusalPrefix starts the needs-action reason RecordStatusRefusal writes for a
// kenmerk: the activities' wording ("Digipoort refuses the statuses of message N (kenmerk
// K): why"), prepended where a caller words it otherwise. ClearStatusRefusals spells it
// in SQL too.
func statusRefusalPrefix(number int64, kenmerk string) string {
	return fmt.Sprintf("Digipoort refuses the statuses of message %d (kenmerk %s)", number, kenmerk)
}

// ClearStatusRefusals forgets the refusals of the current deliveries of these messages,
// for those Digipoort answered again: the next refusal starts the back-off afresh (and
// marks the message again). A message still marked needs-action for the refusal (its
// reason starts with statusRefusalPrefix) is no longer: the refusal is over, and a reason
// set since by anything else stays. Deliveries never refused are not touched.
func (s *Store) ClearStatusRefusals(ctx context.Context, numbers []int64) error {
	if len(numbers) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var cleared []int64
		if err := tx.SelectContext(ctx, &cleared, `
			WITH answered AS (
				UPDATE deliveries d SET status_refusals = 0, status_ask_after = NULL
				FROM messages m
				WHERE d.message_number = ANY($1) AND d.status_refusals > 0 AND m.number = d.message_number AND m.attempt = d.attempt
				RETURNING d.message_number, d.kenmerk)
			UPDATE messages m SET needs_action = false, needs_action_reason = ''
			FROM answered a
			WHERE m.number = a.message_number AND m.needs_action
				AND starts_with(m.needs_action_reason, 'Digipoort refuses the statuses of message ' || m.number || ' (kenmerk ' || a.kenmerk || ')')
			RETURNING m.number`, pq.Array(numbers)); err != nil {
			return err
		}
		entries := make([]LogEntry, len(cleared))
		for i := range cleared {
			entries[i] = LogEntry{MessageNumber: &cleared[i], Step: domain.StepReceive, Level: domain.LevelInfo,
				Description: fmt.Sprintf("Digipoort answers the status requests of message %d again: it no longer needs action for the refusal", cleared[i])}
		}
		return writeLogs(ctx, tx, entries)
	})
	if err != nil {
		return fmt.Errorf("clear the status refusals of %d message(s): %w", len(numbers), err)
	}
	return nil
}
