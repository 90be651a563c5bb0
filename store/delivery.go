package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"koerier/domain"
	"koerier/pipeline"
)

// DueMessage is a message send/receive should deliver.
type DueMessage struct {
	Number        int64 `db:"number"`
	EnvironmentID int64 `db:"environment_id"`
}

// DueMessages pages through the Digipoort messages that are due to send, by number. An
// e-invoice or a payment order is dispatched by its environment's own e-mail or bank
// send/receive (rules 22, 23), which also reads that channel's replies.
func (s *Store) DueMessages(ctx context.Context, after int64, limit int) ([]DueMessage, error) {
	out := []DueMessage{}
	// Also an older version marked do-not-send whose delivery has no known outcome: it
	// is looked up (rule 11) before the version rules refuse it, and the newer version
	// waits for that.
	//
	// A message whose environment is gone (rule 9) is offered until BeginDelivery has
	// marked it needs-action with the rule-9 reason (also where the environment was
	// deactivated by another hand), and then no more: each delivery would only wait, and
	// the workflow's delivery deadline would bury the rule-9 reason under a misleading one.
	if err := s.db.SelectContext(ctx, &out, `
		SELECT number, environment_id FROM (
			(SELECT m.number, m.environment_id FROM messages m JOIN environments e ON e.id = m.environment_id
			 WHERE m.direction = $3 AND m.status = ANY($4) AND NOT m.do_not_send AND m.number > $1 AND m.channel = 'digipoort'
			   AND `+notHeldByGoneEnvironment+`
			 ORDER BY m.number LIMIT $2)
			UNION ALL
			(SELECT m.number, m.environment_id FROM deliveries d JOIN messages m ON m.number = d.message_number AND m.attempt = d.attempt
			 JOIN environments e ON e.id = m.environment_id
			 WHERE `+openDelivery+` AND m.do_not_send AND m.status = ANY($4) AND m.number > $1 AND m.channel = 'digipoort'
			   AND `+notHeldByGoneEnvironment+`
			 ORDER BY m.number LIMIT $2)
		) due ORDER BY number LIMIT $2`, after, limit, domain.DirectionOut, pq.Array(domain.DueStatuses())); err != nil {
		return nil, fmt.Errorf("list due messages after %d: %w", after, err)
	}
	return out, nil
}

// InFlight is a delivery that waits for replies.
type InFlight struct {
	Number    int64     `db:"number"`
	Attempt   int       `db:"attempt"`
	Kenmerk   string    `db:"kenmerk"`
	StartedAt time.Time `db:"started_at"`
}

// InFlightDeliveries pages through the current Digipoort deliveries of messages that
// are sent but have no final status yet, leaving out those whose kenmerk Digipoort
// refused and whose next ask has not come (RecordStatusRefusal). E-invoices are left
// out: they never were at Digipoort, and asking it about them would only fail.
func (s *Store) InFlightDeliveries(ctx context.Context, after int64, limit int) ([]InFlight, error) {
	out := []InFlight{}
	if err := s.db.SelectContext(ctx, &out, `
		SELECT m.number, m.attempt, d.kenmerk, d.started_at
		FROM messages m JOIN deliveries d ON d.message_number = m.number AND d.attempt = m.attempt
		WHERE m.direction = $3 AND m.channel = $5 AND m.status = ANY($4) AND m.number > $1 AND d.kenmerk IS NOT NULL
			AND (d.status_ask_after IS NULL OR d.status_ask_after <= now())
		ORDER BY m.number LIMIT $2`, after, limit, domain.DirectionOut, pq.Array(domain.InFlightStatuses()), domain.ChannelDigipoort); err != nil {
		return nil, fmt.Errorf("list deliveries in flight after %d: %w", after, err)
	}
	return out, nil
}

// DeliveryPlan is what the deliver activity needs to call Digipoort, or why it must
// not.
type DeliveryPlan struct {
	Number          int64
	Attempt         int
	Aanleverkenmerk string
	Berichtsoort    string
	Subject         string
	IdentityType    string
	// Channel is how the message goes: Digipoort, or e-mail (an e-invoice, sent from
	// the profile of environment EnvironmentID to Recipient).
	Channel       domain.Channel
	Recipient     string
	EnvironmentID int64
	MessageType   string
	// Refused says why this message may not be sent (rule 3 in docs/rules.md); nothing
	// was changed.
	Refused string
	// Wait says why this message may not be sent yet: another version of its
	// declaration has a delivery whose outcome is not known. Nothing was changed.
	Wait string
	// Kenmerk is set when this attempt was delivered already: nothing to do.
	Kenmerk string
	// Uncertain is set when an earlier try of this attempt started but did not record
	// an outcome (the worker died mid-call, or the call timed out): Digipoort must be
	// asked before delivering again, or the declaration could be filed twice.
	Uncertain bool
	StartedAt time.Time
	// OpenFor is how long the uncertain delivery has been open, by the database's
	// clock (every stored time is the database's; the worker's may differ).
	OpenFor time.Duration
}

// openDelivery is the condition (on deliveries d) of a delivery whose outcome is not
// known: started, no kenmerk, neither refused nor closed as not having arrived.
const openDelivery = `d.kenmerk IS NULL AND d.failed_at IS NULL AND d.closed_at IS NULL`

// BeginDelivery records that a delivery attempt starts, before Digipoort is called,
// or says why it must not. Deliveries of one subject and berichtsoort go one at a
// time (under a lock of their own): an open delivery is always resolved before any
// version rule applies, so that a version that may be at Digipoort is looked up
// rather than refused; another message of the same subject and berichtsoort (a newer
// version, or another period) waits until it is — both so that an older version can
// never reach the authority after a newer one, and so that the look-up of a lost
// answer can tell its process from theirs.
func (s *Store) BeginDelivery(ctx context.Context, number int64) (DeliveryPlan, error) {
	var plan DeliveryPlan
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// The subject's lock before the message's row, always in this order.
		var who struct {
			Subject      string `db:"subject"`
			Berichtsoort string `db:"berichtsoort"`
		}
		if err := tx.GetContext(ctx, &who, `SELECT subject, berichtsoort FROM messages WHERE number = $1`, number); err != nil && !isNoRows(err) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('deliveries/' || $1 || '/' || $2, 0))`,
			who.Subject, who.Berichtsoort); err != nil {
			return err
		}
		m, err := lockMessage(ctx, tx, number)
		if err != nil {
			return err
		}
		if m.Direction != domain.DirectionOut {
			return fmt.Errorf("%w: message %d is an incoming message", ErrRefused, number)
		}
		plan = DeliveryPlan{Number: number, Attempt: m.Attempt, Aanleverkenmerk: domain.Aanleverkenmerk(s.prefix, number, m.Attempt),
			Berichtsoort: m.Berichtsoort, Subject: m.Subject, IdentityType: m.IdentityType, Channel: m.Channel, Recipient: deref(m.Recipient),
			EnvironmentID: deref(m.EnvironmentID), MessageType: m.Type}
		var d struct {
			Ref       string        `db:"aanleverkenmerk"`
			Kenmerk   *string       `db:"kenmerk"`
			StartedAt time.Time     `db:"started_at"`
			OpenFor   time.Duration `db:"open_for"`
			Failed    bool          `db:"failed"`
			Closed    bool          `db:"closed"`
			// SentSubject: the subject this try named, where it is not the stored one.
			SentSubject *string `db:"sent_subject"`
		}
		err = tx.GetContext(ctx, &d, `SELECT aanleverkenmerk, kenmerk, started_at, failed_at IS NOT NULL AS failed, closed_at IS NOT NULL AS closed, sent_subject,
			(extract(epoch FROM now() - started_at) * 1e9)::bigint AS open_for
			FROM deliveries WHERE message_number = $1 AND attempt = $2`, number, m.Attempt)
		exists := err == nil
		if exists {
			// The reference this attempt was delivered with, whatever the prefix is now.
			plan.Aanleverkenmerk = d.Ref
		}
		switch {
		case exists && d.Kenmerk != nil:
			plan.Kenmerk, plan.StartedAt = *d.Kenmerk, d.StartedAt
			return nil
		case exists && d.Failed:
			plan.Refused = fmt.Sprintf("message %d attempt %d was refused by Digipoort before; restore it to resend", number, m.Attempt)
			return nil
		case exists && !d.Closed:
			plan.Uncertain, plan.StartedAt, plan.OpenFor = true, d.StartedAt, d.OpenFor
			if d.SentSubject != nil { // the look-up asks for what was sent (normalise.go)
				plan.Subject = *d.SentSubject
			}
			return nil
		case err != nil && !isNoRows(err):
			return err
		}
		// Rule 9: nothing new goes out for an environment that is gone (an open delivery is
		// still looked up above: that sends nothing).
		if reason, gone := environmentGone(m); gone {
			plan.Wait = reason
			return markEnvironmentGone(ctx, tx, m, reason)
		}
		var open []struct {
			Number  int64  `db:"number"`
			Version *int   `db:"version"`
			Period  string `db:"period"`
		}
		if err := tx.SelectContext(ctx, &open, `
			SELECT m.number, m.version, m.period FROM deliveries d JOIN messages m ON m.number = d.message_number AND m.attempt = d.attempt
			WHERE `+openDelivery+` AND m.subject = $1 AND m.berichtsoort = $2 AND m.number <> $3
			  -- e-invoices have no berichtsoort and their subject is an invoice number:
			  -- only the same environment's invoices are the same subject
			  AND m.channel = $4 AND ($4 = $5::text OR m.environment_id = $6)
			ORDER BY m.number`, m.Subject, m.Berichtsoort, number, m.Channel, domain.ChannelDigipoort, deref(m.EnvironmentID)); err != nil {
			return err
		}
		if len(open) > 0 {
			plan.Wait = fmt.Sprintf("message %d (%s %s, period %s) has a delivery whose outcome is not known yet; message %d waits until that one "+
				"is resolved (its message says how), so that an older version can never reach the authority after a newer one and the look-up "+
				"can tell the two apart", open[0].Number, m.Berichtsoort, m.Subject, open[0].Period, number)
			return nil
		}
		if rerr := domain.MaySend(m.AsVersion(), m.Latest()); rerr != nil {
			plan.Refused = rerr.Error()
			return nil
		}
		if held, err := s.holdFurtherFiles(ctx, tx, m); err != nil || held != "" {
			plan.Wait = held
			return err
		}
		if exists { // closed: it did not reach Digipoort; this try starts it again
			return tx.GetContext(ctx, &plan.StartedAt, `UPDATE deliveries SET closed_at = NULL, started_at = now(), last_error = '', sent_subject = NULL
				WHERE message_number = $1 AND attempt = $2 RETURNING started_at`, number, m.Attempt)
		}
		return tx.GetContext(ctx, &plan.StartedAt, `INSERT INTO deliveries (message_number, attempt, aanleverkenmerk) VALUES ($1, $2, $3) RETURNING started_at`,
			number, m.Attempt, plan.Aanleverkenmerk)
	})
	if err != nil {
		return DeliveryPlan{}, fmt.Errorf("begin delivery of message %d: %w", number, err)
	}
	return plan, nil
}

// KnownKenmerken reports which of the kenmerken belong to a delivery Koerier knows.
func (s *Store) KnownKenmerken(ctx context.Context, kenmerken []string) (map[string]bool, error) {
	var known []string
	if err := s.db.SelectContext(ctx, &known, `SELECT kenmerk FROM deliveries WHERE kenmerk = ANY($1)`, pq.Array(kenmerken)); err != nil {
		return nil, fmt.Errorf("look up kenmerken: %w", err)
	}
	out := make(map[string]bool, len(known))
	for _, k := range known {
		out[k] = true
	}
	return out, nil
}

// RecordDelivered stores Digipoort's kenmerk for an attempt and raises the message to
// sent. adopted is empty for a delivery Digipoort answered, or says why kenmerk was
// adopted as a delivery whose answer was lost. Recording the same kenmerk again is a
// no-op.
func (s *Store) RecordDelivered(ctx context.Context, number int64, attempt int, kenmerk, adopted string) error {
	if err := s.inTx(ctx, func(tx *sqlx.Tx) error { return recordDelivered(ctx, tx, number, attempt, kenmerk, adopted) }); err != nil {
		return fmt.Errorf("record delivery of message %d: %w", number, err)
	}
	return nil
}

func recordDelivered(ctx context.Context, tx *sqlx.Tx, number int64, attempt int, kenmerk, adopted string) error {
	// The message's row before its delivery's, in the order every other change takes.
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM messages WHERE number = $1 FOR UPDATE`, number); err != nil {
		return err
	}
	var ref string
	err := tx.GetContext(ctx, &ref, `UPDATE deliveries SET kenmerk = $3, delivered_at = now(), last_error = ''
		WHERE message_number = $1 AND attempt = $2 AND (kenmerk IS NULL OR kenmerk = $3) RETURNING aanleverkenmerk`, number, attempt, kenmerk)
	if isNoRows(err) {
		return fmt.Errorf("%w: delivery %d attempt %d is not open or has another kenmerk, so Digipoort's kenmerk %s was not recorded: "+
			"look it up with `starter digipoort status --kenmerk %s`", ErrRefused, number, attempt, kenmerk, kenmerk)
	}
	if isUniqueViolation(err, "") {
		return fmt.Errorf("%w: kenmerk %s is already another delivery of Koerier's", ErrRefused, kenmerk)
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET status = 'sent', last_status_change = now()
		WHERE number = $1 AND attempt = $2
		  AND (SELECT rank FROM message_statuses WHERE status = messages.status) < (SELECT rank FROM message_statuses WHERE status = 'sent')`,
		number, attempt); err != nil {
		return err
	}
	// Delivered: the delivery trouble that needed an operator is over.
	if err := clearDeliveryTrouble(ctx, tx, number); err != nil {
		return err
	}
	how := "delivered to Digipoort"
	if adopted != "" {
		how = "found at Digipoort after an interrupted delivery (not delivered again: " + adopted + ")"
	}
	n := number
	return writeLog(ctx, tx, LogEntry{MessageNumber: &n, Step: domain.StepSend, Level: domain.LevelInfo,
		Description: fmt.Sprintf("message %d %s with aanleverkenmerk %s; kenmerk %s", number, how, ref, kenmerk),
		DedupeKey:   fmt.Sprintf("delivered/%d/%d", number, attempt)})
}

// RecordSendFailed records that Digipoort refused the delivery for good (a final
// fault); the message waits for an operator to restore it.
func (s *Store) RecordSendFailed(ctx context.Context, number int64, attempt int, reason string) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM messages WHERE number = $1 FOR UPDATE`, number); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET failed_at = now(), last_error = $3, last_error_at = now()
			WHERE message_number = $1 AND attempt = $2 AND kenmerk IS NULL`, number, attempt, reason); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET status = 'send_failed', last_status_change = now(), needs_action = true, needs_action_reason = $3
			WHERE number = $1 AND attempt = $2 AND status = ANY($4)`, number, attempt, reason, pq.Array(domain.DueStatuses())); err != nil {
			return err
		}
		n := number
		return writeLog(ctx, tx, LogEntry{MessageNumber: &n, Step: domain.StepSend, Level: domain.LevelError,
			Description: fmt.Sprintf("Digipoort refused message %d: %s", number, reason),
			Information: fmt.Sprintf("correct the cause, then restore the message (starter restore %d) so that the next send/receive sends it again", number),
			DedupeKey:   fmt.Sprintf("send-failed/%d/%d", number, attempt)})
	})
	if err != nil {
		return fmt.Errorf("record failed delivery of message %d: %w", number, err)
	}
	return nil
}

// RecordDeliveryError notes a delivery that could not be completed for now (Digipoort
// unreachable, overloaded); the message stays due and the next round tries again. The
// F line is written once per distinct error of an attempt: an outage that lasts hours
// is one line, not one per round.
func (s *Store) RecordDeliveryError(ctx context.Context, number int64, attempt int, reason string) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`UPDATE deliveries SET last_error = $3, last_error_at = now() WHERE message_number = $1 AND attempt = $2`, number, attempt, reason); err != nil {
			return err
		}
		n := number
		return writeLog(ctx, tx, LogEntry{MessageNumber: &n, Step: domain.StepSend, Level: domain.LevelError,
			Description: fmt.Sprintf("delivery of message %d could not be completed: %s", number, reason),
			Information: "the message stays due; send/receive tries again at each run (auto-send backs off up to an hour between rounds), " +
				"first asking Digipoort whether it arrived",
			DedupeKey: fmt.Sprintf("delivery-error/%d/%d/%x", number, attempt, sha256.Sum256([]byte(reason)))})
	})
	if err != nil {
		return fmt.Errorf("record delivery error of message %d: %w", number, err)
	}
	return nil
}

// SendOutcomes reports, for messages dispatched at or after since, which were
// delivered, refused for good, failed for now, or are still pending.
func (s *Store) SendOutcomes(ctx context.Context, numbers []int64, since time.Time) (pipeline.SendOutcome, error) {
	var rows []struct {
		Number  int64  `db:"number"`
		Outcome string `db:"outcome"`
	}
	err := s.db.SelectContext(ctx, &rows, `
		SELECT m.number,
		  CASE
		    WHEN m.status = 'send_failed' THEN 'failed'
		    WHEN d.kenmerk IS NOT NULL THEN 'sent'
		    WHEN m.do_not_send AND d.message_number IS NULL THEN 'refused'
		    WHEN NOT m.status = ANY($3) THEN 'sent'
		    -- its environment is gone (rule 9): it waits for an operator
		    WHEN NOT COALESCE(e.active, false) THEN 'errors'
		    WHEN d.last_error_at >= $2 THEN 'errors'
		    -- not delivered this round and saying why: its look-up gave up, or a
		    -- deadline passed, or it waits for another delivery of its subject
		    WHEN m.needs_action AND starts_with(m.needs_action_reason, $4) THEN 'errors'
		    WHEN EXISTS (SELECT 1 FROM deliveries d JOIN messages o ON o.number = d.message_number AND o.attempt = d.attempt
		                 WHERE `+openDelivery+` AND o.subject = m.subject AND o.berichtsoort = m.berichtsoort AND o.number <> m.number
		                   AND o.channel = m.channel AND (m.channel = 'digipoort' OR o.environment_id = m.environment_id)) THEN 'errors'
		    ELSE 'pending'
		  END AS outcome
		FROM messages m LEFT JOIN deliveries d ON d.message_number = m.number AND d.attempt = m.attempt
		LEFT JOIN environments e ON e.id = m.environment_id
		WHERE m.number = ANY($1)`, pq.Array(numbers), since, pq.Array(domain.DueStatuses()), domain.DeliveryTrouble)
	if err != nil {
		return pipeline.SendOutcome{}, fmt.Errorf("read send outcomes: %w", err)
	}
	var out pipeline.SendOutcome
	for _, r := range rows {
		switch r.Outcome {
		case "sent":
			out.Sent++
		case "failed":
			out.Failed++
		case "refused":
			out.Refused++
		case "errors":
			out.Errors++
		default:
			out.Pending = append(out.Pending, r.Number)
		}
	}
	return out, nil
}

// DropUnaccepted closes the try of a delivery that Digipoort answered with a fault of
// its own (it did not accept it, e.g. overloaded): nothing reached it, so the next
// round delivers afresh instead of looking it up. Only that try (started at
// startedAt): a later try of the same attempt is left alone.
func (s *Store) DropUnaccepted(ctx context.Context, number int64, attempt int, startedAt time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE deliveries d SET closed_at = now() WHERE message_number = $1 AND attempt = $2 AND started_at = $3
		AND `+openDelivery, number, attempt, startedAt); err != nil {
		return fmt.Errorf("close the unaccepted delivery of message %d: %w", number, err)
	}
	return nil
}

// ResolveDelivery carries out an operator's decision about a delivery whose outcome
// is not known: adopt Digipoort's process kenmerk as this delivery, or (deliverAgain)
// declare that it did not arrive, so that the next round delivers it again. Both are
// logged with who decided. Only a delivery the look-up gave up on (the message needs
// action for it) can be decided: never a call still under way, nor one decided before.
func (s *Store) ResolveDelivery(ctx context.Context, number int64, attempt int, adopt string, deliverAgain bool, who string) error {
	if (adopt == "") == !deliverAgain {
		return fmt.Errorf("%w: decide either to adopt a kenmerk or to deliver again", ErrInvalid)
	}
	if adopt != "" && (len(adopt) > domain.MaxKenmerkLen || strings.TrimSpace(adopt) != adopt) {
		return fmt.Errorf("%w: kenmerk %q: Digipoort's kenmerken have at most %d characters and no spaces", ErrInvalid, adopt, domain.MaxKenmerkLen)
	}
	if who == "" {
		who = "an operator"
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		m, err := lockMessage(ctx, tx, number)
		if err != nil {
			return err
		}
		if !m.NeedsAction || !strings.HasPrefix(m.NeedsActionReason, domain.DeliveryTrouble+UndecidedDelivery) {
			return fmt.Errorf("%w: message %d has no delivery that waits for a decision (only one whose look-up gave up can be decided)",
				ErrRefused, number)
		}
		var d struct {
			Ref     string    `db:"aanleverkenmerk"`
			Started time.Time `db:"started_at"`
		}
		err = tx.GetContext(ctx, &d, `SELECT aanleverkenmerk, started_at FROM deliveries d
			WHERE message_number = $1 AND attempt = $2 AND `+openDelivery+` FOR UPDATE`, number, attempt)
		if isNoRows(err) {
			return fmt.Errorf("%w: message %d has no delivery whose outcome is unknown (attempt %d): there is nothing to decide", ErrRefused, number, attempt)
		}
		if err != nil {
			return err
		}
		n := number
		if deliverAgain {
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET closed_at = now() WHERE message_number = $1 AND attempt = $2`, number, attempt); err != nil {
				return err
			}
			if err := clearDeliveryTrouble(ctx, tx, number); err != nil {
				return err
			}
			return writeLog(ctx, tx, LogEntry{MessageNumber: &n, Step: domain.StepSend, Level: domain.LevelInfo,
				Description: fmt.Sprintf("%s decided that the delivery of message %d (aanleverkenmerk %s, started %s) did not reach Digipoort: "+
					"it is delivered again", who, number, d.Ref, d.Started.UTC().Format(time.RFC3339))})
		}
		return recordDelivered(ctx, tx, number, attempt, adopt, "adopted by "+who)
	})
	if err != nil {
		return fmt.Errorf("resolve the delivery of message %d: %w", number, err)
	}
	return nil
}

// UndecidedDelivery starts (after domain.DeliveryTrouble) the needs-action reason of
// a delivery whose look-up gave up: only such a delivery is decided by an operator.
const UndecidedDelivery = "the delivery of message "

// clearDeliveryTrouble ends a needs-action that a delivery raised (domain.DeliveryTrouble):
// the delivery was made, adopted, or an operator decided about it. Other reasons stay.
func clearDeliveryTrouble(ctx context.Context, tx *sqlx.Tx, number int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE messages SET needs_action = false, needs_action_reason = ''
		WHERE number = $1 AND needs_action AND starts_with(needs_action_reason, $2)`, number, domain.DeliveryTrouble)
	return err
}
