package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"koerier/domain"
	"koerier/pipeline"
)

// Restore puts a failed message back to "ready to resend after error" as a new
// delivery attempt (rule 3 (docs/rules.md): only the latest version). A message already restored is
// left as it is, so a repeated signal does nothing twice. A refusal wraps ErrRefused
// and says why.
func (s *Store) Restore(ctx context.Context, number int64, who string) (pipeline.RestoreResult, error) {
	var res pipeline.RestoreResult
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		m, err := lockMessage(ctx, tx, number)
		if err != nil {
			return err
		}
		if m.Direction != domain.DirectionOut {
			return fmt.Errorf("%w: message %d is an incoming message; only outgoing messages are restored", ErrRefused, number)
		}
		if m.Status == domain.StatusReadyToResend {
			res = pipeline.RestoreResult{Attempt: m.Attempt, Already: true}
			return nil
		}
		if rerr := domain.MayRestore(m.AsVersion(), m.Latest()); rerr != nil {
			return fmt.Errorf("%w: %v", ErrRefused, rerr)
		}
		res.Attempt = m.Attempt + 1
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET status = 'ready_to_resend', env_status = 'ready_to_resend', env_status_changed = now(),
			last_status_change = now(), attempt = $2, needs_action = false, needs_action_reason = '',
				reported_status = NULL WHERE number = $1`, number, res.Attempt); err != nil {
			return err
		}
		// The environment sees the restore at once: one webhook event (rule 13).
		if err := writeWebhookEvent(ctx, tx, m, m.EnvStatus); err != nil {
			return err
		}
		if who == "" {
			who = "an operator"
		}
		return writeLog(ctx, tx, LogEntry{MessageNumber: &number, Step: domain.StepRestore, Level: domain.LevelInfo,
			Description: fmt.Sprintf(
				"message %d restored by %s: was %s, now ready to resend after error (attempt %d, aanleverkenmerk %s)", number, who, m.Status,
				res.Attempt, domain.Aanleverkenmerk(s.prefix, number, res.Attempt),
			)})
	})
	if err != nil {
		return pipeline.RestoreResult{}, fmt.Errorf("restore message %d: %w", number, err)
	}
	return res, nil
}
