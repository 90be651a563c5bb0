package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"koerier/domain"
)

// ProcessResult is what processing a message did to its environment's view.
type ProcessResult struct {
	Status  domain.Status `json:"status"`
	Changed bool          `json:"changed"`
	// AutoProcess reports the environment's profile, for callers that process on
	// their own when it says so.
	AutoProcess bool `json:"auto_process"`
}

// Process applies the message's received replies to its environment's view: the
// environment now sees the message's status and when it changed.
func (s *Store) Process(ctx context.Context, number int64) (ProcessResult, error) {
	var res ProcessResult
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var row struct {
			Status    string `db:"status"`
			EnvStatus string `db:"env_status"`
			Auto      *bool  `db:"auto_process"`
		}
		if err := tx.GetContext(ctx, &row, `SELECT m.status, m.env_status, e.auto_process FROM messages m LEFT JOIN environments e ON e.id = m.environment_id
			WHERE m.number = $1 AND m.direction = 'out' FOR UPDATE OF m`, number); err != nil {
			if isNoRows(err) {
				return fmt.Errorf("%w: message %d does not exist", ErrNotFound, number)
			}
			return err
		}
		res.Status = domain.Status(row.Status)
		res.AutoProcess = row.Auto != nil && *row.Auto
		if row.Status == row.EnvStatus {
			return nil
		}
		res.Changed = true
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET env_status = status, env_status_changed = last_status_change, processed_at = now() WHERE number = $1`, number); err != nil {
			return err
		}
		n := number
		return writeLog(ctx, tx, LogEntry{MessageNumber: &n, Step: StepProcess, Level: LevelInfo,
			Description: fmt.Sprintf("message %d processed: the environment now sees %s (was %s)", number, row.Status, row.EnvStatus)})
	})
	if err != nil {
		return ProcessResult{}, fmt.Errorf("process message %d: %w", number, err)
	}
	return res, nil
}

// Unprocessed lists messages whose replies the environment has not seen yet; an empty
// environment means all environments.
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
	if err := s.db.SelectContext(ctx, &out, `SELECT number FROM messages
		WHERE direction = 'out' AND env_status <> status AND ($1::bigint IS NULL OR environment_id = $1) ORDER BY number LIMIT $2`, envID, limit); err != nil {
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
		entry := LogEntry{MessageNumber: &number, Step: StepReport, DedupeKey: fmt.Sprintf("report/%d/%d/%s", number, m.Attempt, m.Status)}
		what := fmt.Sprintf("%s %s %s version %d (message %d)", m.Type, m.Subject, m.Period, deref(m.Version), number)
		if m.Status == domain.StatusAccepted {
			entry.Level = LevelInfo
			entry.Description = what + " accepted by the authority"
		} else {
			entry.Level = LevelError
			entry.Description = fmt.Sprintf("%s ended %s", what, m.Status)
			reason, err := failureReason(ctx, tx, number, m.Attempt)
			if err != nil {
				return err
			}
			if reason == "" {
				reason = m.NeedsActionReason
			}
			entry.Information = reason + "; then restore it (starter restore " + fmt.Sprint(number) + ") and it is sent again with the next send/receive"
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
		info := domain.InterpretCode(r.Code)
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
		return writeLog(ctx, tx, LogEntry{MessageNumber: &number, Step: StepReceive, Level: LevelError, Description: reason, DedupeKey: dedupe})
	})
	if err != nil {
		return fmt.Errorf("mark message %d needs-action: %w", number, err)
	}
	return nil
}

// RestoreResult says what restore did.
type RestoreResult struct {
	Attempt int  `json:"attempt"`
	Already bool `json:"already"`
}

// Restore puts a failed message back to "ready to resend after error" as a new
// delivery attempt (rule 3: only the latest version). A message already restored is
// left as it is, so a repeated signal does nothing twice. A refusal wraps ErrRefused
// and says why.
func (s *Store) Restore(ctx context.Context, number int64, who string) (RestoreResult, error) {
	var res RestoreResult
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		m, err := lockMessage(ctx, tx, number)
		if err != nil {
			return err
		}
		if m.Direction != "out" {
			return fmt.Errorf("%w: message %d is an incoming message; only outgoing messages are restored", ErrRefused, number)
		}
		if m.Status == domain.StatusReadyToResend {
			res = RestoreResult{Attempt: m.Attempt, Already: true}
			return nil
		}
		if rerr := domain.MayRestore(m.AsVersion(), m.Latest()); rerr != nil {
			return fmt.Errorf("%w: %v", ErrRefused, rerr)
		}
		res.Attempt = m.Attempt + 1
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET status = 'ready_to_resend', env_status = 'ready_to_resend', env_status_changed = now(),
			last_status_change = now(), attempt = $2, needs_action = false, needs_action_reason = '', reported_status = NULL WHERE number = $1`, number, res.Attempt); err != nil {
			return err
		}
		if who == "" {
			who = "an operator"
		}
		return writeLog(ctx, tx, LogEntry{MessageNumber: &number, Step: StepRestore, Level: LevelInfo,
			Description: fmt.Sprintf("message %d restored by %s: was %s, now ready to resend after error (attempt %d, aanleverkenmerk %s)", number, who, m.Status, res.Attempt, domain.Aanleverkenmerk(number, res.Attempt))})
	})
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore message %d: %w", number, err)
	}
	return res, nil
}

// AssignEnvironment moves a message whose environment no longer exists to another
// environment (rule 9), or with resolve closes the question without one. It is
// refused on a message that was handled correctly, and on one whose environment is
// still there.
func (s *Store) AssignEnvironment(ctx context.Context, number int64, env string, resolve bool, who string) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		m, err := lockMessage(ctx, tx, number)
		if err != nil {
			return err
		}
		switch {
		case m.Direction != "out":
			return fmt.Errorf("%w: message %d is an incoming message", ErrRefused, number)
		case m.Handled():
			return fmt.Errorf("%w: message %d was handled correctly (%s, reported to its environment): it cannot be assigned elsewhere", ErrRefused, number, m.Status)
		case m.EnvironmentActive != nil && *m.EnvironmentActive:
			return fmt.Errorf("%w: message %d belongs to environment %s, which still exists", ErrRefused, number, deref(m.Environment))
		}
		if who == "" {
			who = "an operator"
		}
		if resolve {
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET needs_action = false, needs_action_reason = '' WHERE number = $1`, number); err != nil {
				return err
			}
			return writeLog(ctx, tx, LogEntry{MessageNumber: &number, Step: StepEnvironment, Level: LevelInfo,
				Description: fmt.Sprintf("message %d of removed environment %s resolved by %s: its outcome stays in this log only", number, deref(m.Environment), who)})
		}
		var target struct {
			ID     int64 `db:"id"`
			Active bool  `db:"active"`
		}
		if err := tx.GetContext(ctx, &target, `SELECT id, active FROM environments WHERE name = $1`, env); err != nil {
			if isNoRows(err) {
				return fmt.Errorf("%w: environment %q does not exist", ErrNotFound, env)
			}
			return err
		}
		if !target.Active {
			return fmt.Errorf("%w: environment %s was removed too", ErrRefused, env)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET environment_id = $2, needs_action = false, needs_action_reason = '' WHERE number = $1`, number, target.ID); err != nil {
			return err
		}
		return writeLog(ctx, tx, LogEntry{EnvironmentID: &target.ID, MessageNumber: &number, Step: StepEnvironment, Level: LevelInfo,
			Description: fmt.Sprintf("message %d moved by %s from removed environment %s to %s", number, who, deref(m.Environment), env)})
	})
	if err != nil {
		return fmt.Errorf("assign message %d: %w", number, err)
	}
	return nil
}

func lockMessage(ctx context.Context, tx *sqlx.Tx, number int64) (Message, error) {
	var m Message
	if err := tx.GetContext(ctx, &m, `SELECT `+messageColumns+messageFrom+` WHERE m.number = $1 FOR UPDATE OF m`, number); err != nil {
		if isNoRows(err) {
			return Message{}, fmt.Errorf("%w: message %d does not exist", ErrNotFound, number)
		}
		return Message{}, err
	}
	return m, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// PendingSignal is a stored reply the message's workflow has not been told about.
type PendingSignal struct {
	StoredReply
	MessageStatus  domain.Status `db:"message_status"`
	MessageAttempt int           `db:"message_attempt"`
	NeedsAction    bool          `db:"needs_action"`
}

// UnsignaledReplies returns replies whose workflow has not been signalled yet —
// for the given messages, or (numbers nil) for any message — oldest first.
func (s *Store) UnsignaledReplies(ctx context.Context, numbers []int64, limit int) ([]PendingSignal, error) {
	out := []PendingSignal{}
	var arg any
	if numbers != nil {
		arg = pq.Array(numbers)
	}
	if err := s.db.SelectContext(ctx, &out, `
		SELECT e.id, e.message_number, e.attempt, e.kenmerk, e.code, e.status, e.occurred_at, e.description, e.error_code,
		       e.error_description, e.details, e.applied, m.status AS message_status, m.attempt AS message_attempt, m.needs_action
		FROM status_events e JOIN messages m ON m.number = e.message_number
		WHERE NOT e.signaled AND ($1::bigint[] IS NULL OR e.message_number = ANY($1))
		ORDER BY e.message_number, e.occurred_at, e.id LIMIT $2`, arg, limit); err != nil {
		return nil, fmt.Errorf("list unsignalled replies: %w", err)
	}
	return out, nil
}

// MarkSignaled records that the workflows were told about these replies.
func (s *Store) MarkSignaled(ctx context.Context, eventIDs []int64) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE status_events SET signaled = true WHERE id = ANY($1)`, pq.Array(eventIDs)); err != nil {
		return fmt.Errorf("mark %d replies signalled: %w", len(eventIDs), err)
	}
	return nil
}

// PickupCounts returns how many documents are stored per pickup kenmerk.
func (s *Store) PickupCounts(ctx context.Context, kenmerken []string) (map[string]int, error) {
	var rows []struct {
		Kenmerk string `db:"pickup_kenmerk"`
		N       int    `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT pickup_kenmerk, count(*) AS n FROM messages WHERE pickup_kenmerk = ANY($1) GROUP BY pickup_kenmerk`, pq.Array(kenmerken)); err != nil {
		return nil, fmt.Errorf("count stored pickups: %w", err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Kenmerk] = r.N
	}
	return out, nil
}

// IsKnownKenmerk reports whether a Digipoort kenmerk belongs to a delivery Koerier made.
func (s *Store) IsKnownKenmerk(ctx context.Context, kenmerk string) (bool, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM deliveries WHERE kenmerk = $1`, kenmerk); err != nil {
		return false, fmt.Errorf("look up kenmerk %s: %w", kenmerk, err)
	}
	return n > 0, nil
}
