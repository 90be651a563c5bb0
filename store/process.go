package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"koerier/domain"
	"koerier/pipeline"
)

// Process applies the message's received replies to its environment's view: the
// environment now sees the message's status and when it changed.
func (s *Store) Process(ctx context.Context, number int64) (pipeline.ProcessResult, error) {
	var res pipeline.ProcessResult
	gone := ""
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		m, err := lockMessage(ctx, tx, number)
		if err != nil {
			return err
		}
		if m.Direction != domain.DirectionOut {
			return fmt.Errorf("%w: message %d is an incoming message; only outgoing messages are processed", ErrRefused, number)
		}
		res.Status, res.AutoProcess = m.Status, deref(m.AutoProcess)
		if m.Status == m.EnvStatus {
			return nil
		}
		if reason, isGone := environmentGone(m); isGone {
			// Rule 9: no environment may be told while none holds the message. The marking
			// commits (the refusal is returned after it): an operator must hear of it.
			gone = reason
			return markEnvironmentGone(ctx, tx, m, reason)
		}
		res.Changed = true
		return applyProcess(ctx, tx, m, "")
	})
	if err == nil && gone != "" {
		err = fmt.Errorf("%w: message %d cannot be processed: %s", ErrRefused, number, gone)
	}
	if err != nil {
		return pipeline.ProcessResult{}, fmt.Errorf("process message %d: %w", number, err)
	}
	return res, nil
}

// applyProcess shows the environment the message's status (env_status := status), with
// its webhook event and an I line; how says in what course it happened ("" for process).
func applyProcess(ctx context.Context, tx *sqlx.Tx, m Message, how string) error {
	if _, err := tx.ExecContext(ctx,
		`UPDATE messages SET env_status = status, env_status_changed = last_status_change, processed_at = now() WHERE number = $1`, m.Number); err != nil {
		return err
	}
	// The outbox (rule 13): the event commits with the change or not at all.
	if err := writeWebhookEvent(ctx, tx, m, m.EnvStatus); err != nil {
		return err
	}
	n := m.Number
	return writeLog(ctx, tx, LogEntry{MessageNumber: &n, Step: domain.StepProcess, Level: domain.LevelInfo,
		Description: fmt.Sprintf("message %d processed%s: the environment now sees %s (was %s)", m.Number, how, m.Status, m.EnvStatus)})
}

// Unprocessed lists messages whose replies the environment has not seen yet; an empty
// environment means all environments. A message whose environment is gone is left out:
// it cannot be processed until it is assigned or resolved (rule 9).
func (s *Store) Unprocessed(ctx context.Context, env string, limit int) ([]int64, error) {
	var envID *int64
	if env != "" {
		e, err := s.Environment(ctx, env)
		if err != nil {
			return nil, err
		}
		envID = &e.ID
	}
	out := []int64{}
	if err := s.db.SelectContext(ctx, &out, `SELECT m.number FROM messages m JOIN environments e ON e.id = m.environment_id AND e.active
		WHERE m.direction = $3 AND m.env_status <> m.status AND ($1::bigint IS NULL OR m.environment_id = $1) ORDER BY m.number LIMIT $2`,
		envID, limit, domain.DirectionOut); err != nil {
		return nil, fmt.Errorf("list unprocessed messages: %w", err)
	}
	return out, nil
}

// Report records that the environment was told the final outcome, and writes the
// report line: I for accepted, F with the reason and what to do otherwise. Reporting
// the same outcome again is a no-op.
func (s *Store) Report(ctx context.Context, number int64) (domain.Status, error) {
	var status domain.Status
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		m, err := lockMessage(ctx, tx, number)
		if err != nil {
			return err
		}
		status = m.Status
		if m.ReportedStatus != nil && *m.ReportedStatus == string(m.Status) {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET reported_status = status WHERE number = $1`, number); err != nil {
			return err
		}
		entry := LogEntry{MessageNumber: &number, Step: domain.StepReport, DedupeKey: fmt.Sprintf("report/%d/%d/%s", number, m.Attempt, m.Status)}
		what := fmt.Sprintf("%s %s %s version %d (message %d)", m.Type, m.Subject, m.Period, deref(m.Version), number)
		switch {
		case m.Status == domain.StatusAccepted && m.NeedsAction && m.Channel == domain.ChannelBank:
			// Accepted with something to see to: a payment order the bank accepted with
			// some transfers rejected (PART) must not read as all well.
			entry.Level = domain.LevelError
			entry.Description = what + " accepted, but needs action"
			entry.Information = m.NeedsActionReason
		case m.Status == domain.StatusAccepted:
			entry.Level = domain.LevelInfo
			entry.Description = what + " accepted by the authority"
		default:
			entry.Level = domain.LevelError
			entry.Description = fmt.Sprintf("%s ended %s", what, m.Status)
			reason, err := failureReason(ctx, tx, number, m.Attempt)
			if err != nil {
				return err
			}
			if reason == "" {
				reason = m.NeedsActionReason
			}
			entry.Information = reason + "; then restore it (starter restore " + fmt.Sprint(number) + ") and it is sent again with the next send/receive"
			if m.Channel == domain.ChannelBank && m.Status != domain.StatusSendFailed {
				// Rule 23: the bank has seen its MsgId; restore is refused.
				entry.Information = reason + fmt.Sprintf("; queue the corrected file with a new MsgId as the next version of this order "+
					"(starter queue --type payment --subject %s --period %s --file F)", m.Subject, m.Period)
			}
		}
		return writeLog(ctx, tx, entry)
	})
	if err != nil {
		return "", fmt.Errorf("report message %d: %w", number, err)
	}
	return status, nil
}

// failureReason is the most telling error of the current attempt: Digipoort's error
// status with its code and details, or the delivery refusal.
func failureReason(ctx context.Context, tx *sqlx.Tx, number int64, attempt int) (string, error) {
	var rows []struct {
		Code    string `db:"code"`
		Desc    string `db:"description"`
		ErrCode string `db:"error_code"`
		ErrDesc string `db:"error_description"`
		Details string `db:"details"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT e.code, e.description, e.error_code, e.error_description, e.details FROM status_events e
		JOIN message_statuses ms ON ms.status = e.status
		WHERE e.message_number = $1 AND e.attempt = $2 AND e.applied ORDER BY ms.rank DESC, e.occurred_at DESC LIMIT 1`, number, attempt); err != nil {
		return "", err
	}
	if len(rows) == 1 {
		r := rows[0]
		info := domain.InterpretStatus(r.Code, r.ErrCode)
		text := fmt.Sprintf("Digipoort status %s (%s)", r.Code, info.Meaning)
		if r.ErrCode != "" {
			text += fmt.Sprintf(", %s %s", r.ErrCode, r.ErrDesc)
		}
		if r.Details != "" {
			text += ": " + r.Details
		}
		if info.Advice != "" {
			text += "; " + info.Advice
		}
		return text, nil
	}
	var lastErr string
	err := tx.GetContext(ctx, &lastErr, `SELECT last_error FROM deliveries WHERE message_number = $1 AND attempt = $2`, number, attempt)
	if isNoRows(err) {
		return "", nil
	}
	return lastErr, err
}

// MarkNeedsAction flags a message for an operator with the reason, and logs it (F)
// once per reason.
func (s *Store) MarkNeedsAction(ctx context.Context, number int64, reason, dedupe string) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET needs_action = true, needs_action_reason = $2 WHERE number = $1`, number, reason); err != nil {
			return err
		}
		return writeLog(ctx, tx, LogEntry{MessageNumber: &number, Step: domain.StepReceive, Level: domain.LevelError, Description: reason, DedupeKey: dedupe})
	})
	if err != nil {
		return fmt.Errorf("mark message %d needs-action: %w", number, err)
	}
	return nil
}
