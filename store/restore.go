package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"koerier/domain"
	"koerier/pipeline"
)

// Restore puts a failed message back to "ready to resend after error" as a new
// delivery attempt (rule 3 (docs/rules.md): only the latest version). A message already restored is
// left as it is, so a repeated signal does nothing twice. A refusal wraps ErrRefused
// and says why.
//
// On a do-not-send message it does what "Herstellen berichtstatus" does for "uitgaand
// bericht niet versturen": it clears the flag and makes the message due — unless a newer
// version of its declaration exists (refused, naming it), or a delivery of it has no
// known outcome (rule 11: it may be at Digipoort already). A message without a version
// has no newer one.
func (s *Store) Restore(ctx context.Context, number int64, who string) (pipeline.RestoreResult, error) {
	var res pipeline.RestoreResult
	if who == "" {
		who = "an operator"
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// The declaration's lock before the message's row, the order store.Queue takes
		// them in: a version queued at the same time is either seen here, or marks this
		// one do-not-send again after the restore.
		var key *string
		if err := tx.GetContext(ctx, &key, `SELECT declaration_key FROM messages WHERE number = $1`, number); err != nil && !isNoRows(err) {
			return err
		}
		if err := lockDeclaration(ctx, tx, deref(key)); err != nil {
			return err
		}
		m, err := lockMessage(ctx, tx, number)
		if err != nil {
			return err
		}
		if m.Direction != domain.DirectionOut {
			return fmt.Errorf("%w: message %d is an incoming message; only outgoing messages are restored", ErrRefused, number)
		}
		if _, gone := environmentGone(m); gone {
			// Rule 9: neither sent nor processed (restore implies process) until an operator
			// decides where it belongs.
			return fmt.Errorf("%w: message %d belongs to environment %s, which was removed or is no longer active: assign it another "+
				"environment (`starter assign %d --env E`) or let the service hold it (`starter assign %d --resolve`) first, then restore it",
				ErrRefused, number, deref(m.Environment), number, number)
		}
		if !m.DoNotSend && m.Status.IsDue() {
			// A retried restore (activity retry, a second `starter restore`) after it cleared
			// the flag finds the message due without it: that is the restore done, not a
			// message that never failed.
			done, err := doNotSendClearedLast(ctx, tx, m)
			if err != nil {
				return err
			}
			if done {
				res = pipeline.RestoreResult{Attempt: m.Attempt, Status: m.Status, DoNotSendCleared: true, Already: true}
				return nil
			}
		}
		if m.DoNotSend {
			if err := mayClearDoNotSend(ctx, tx, m); err != nil {
				return err
			}
			if m.Status.IsDue() {
				res = pipeline.RestoreResult{Attempt: m.Attempt, Status: m.Status, DoNotSendCleared: true}
				if _, err := tx.ExecContext(ctx, `UPDATE messages SET do_not_send = false, needs_action = false, needs_action_reason = ''
					WHERE number = $1`, number); err != nil {
					return err
				}
				key, err := doNotSendClearKey(ctx, tx, m)
				if err != nil {
					return err
				}
				return writeLog(ctx, tx, LogEntry{MessageNumber: &number, Step: domain.StepRestore, Level: domain.LevelInfo, DedupeKey: key,
					Description: fmt.Sprintf("message %d restored by %s: do-not-send cleared (no newer version of its declaration exists); "+
						"it is %s and due, and goes with the next send (`starter send %d` sends it now)", number, who, m.Status, number)})
			}
			// A failed one is restored as any failed message is, without the flag.
			m.DoNotSend, res.DoNotSendCleared = false, true
		}
		if m.Status == domain.StatusReadyToResend {
			res = pipeline.RestoreResult{Attempt: m.Attempt, Already: true, Status: m.Status}
			return nil
		}
		if rerr := domain.MayRestore(m.AsVersion(), m.Latest()); rerr != nil {
			return fmt.Errorf("%w: %v", ErrRefused, rerr)
		}
		if m.Channel == domain.ChannelBank && m.Status != domain.StatusSendFailed {
			// Rule 23: the bank has seen this file's MsgId; sent again it is refused as a
			// duplicate (DUPL) at best. A corrected file goes as the order's next version.
			return fmt.Errorf("%w: payment order %d was %s by the bank, which has seen its MsgId and refuses a file that repeats it: correct the "+
				"file, give it a new MsgId and queue it as the next version of this order (`starter queue --type payment --subject %s --period %s "+
				"--file F`)", ErrRefused, number, m.Status, m.Subject, m.Period)
		}
		res.Attempt, res.Status = m.Attempt+1, domain.StatusReadyToResend
		// Restore implies process (rule 3): an environment that processes by hand may not
		// have seen the failure yet. It is shown the failure first, then the restore, so
		// that what it sees (and its webhook events) follows what happened.
		if m.EnvStatus != m.Status {
			if err := applyProcess(ctx, tx, m, " by the restore"); err != nil {
				return err
			}
			m.EnvStatus = m.Status
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET status = 'ready_to_resend', env_status = 'ready_to_resend', env_status_changed = now(),
			last_status_change = now(), attempt = $2, needs_action = false, needs_action_reason = '', do_not_send = false,
				reported_status = NULL WHERE number = $1`, number, res.Attempt); err != nil {
			return err
		}
		// The environment sees the restore at once: one webhook event (rule 13).
		if err := writeWebhookEvent(ctx, tx, m, m.EnvStatus); err != nil {
			return err
		}
		cleared := ""
		if res.DoNotSendCleared {
			cleared = ", do-not-send cleared (no newer version of its declaration exists)"
		}
		return writeLog(ctx, tx, LogEntry{MessageNumber: &number, Step: domain.StepRestore, Level: domain.LevelInfo,
			Description: fmt.Sprintf(
				"message %d restored by %s: was %s, now ready to resend after error (attempt %d, aanleverkenmerk %s)%s", number, who, m.Status,
				res.Attempt, domain.Aanleverkenmerk(s.prefix, number, res.Attempt), cleared,
			)})
	})
	if err != nil {
		return pipeline.RestoreResult{}, fmt.Errorf("restore message %d: %w", number, err)
	}
	return res, nil
}

// doNotSendClearPrefix starts the dedupe key of the I line of a restore that cleared
// do-not-send from a due message: it marks the line, so that a retry recognises its own
// work (doNotSendClearedLast).
func doNotSendClearPrefix(m Message) string {
	return fmt.Sprintf("restore-do-not-send/%d/%d/", m.Number, m.Attempt)
}

// doNotSendClearKey is the dedupe key of the next do-not-send clear of m: numbered by the
// restore lines before it, as the flag may be set and cleared again in the same attempt.
func doNotSendClearKey(ctx context.Context, tx *sqlx.Tx, m Message) (string, error) {
	var n int
	if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM communication_log WHERE message_number = $1 AND step = $2`,
		m.Number, domain.StepRestore); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s%d", doNotSendClearPrefix(m), n), nil
}

// doNotSendClearedLast reports whether the newest restore line of m is a do-not-send
// clear of its current attempt (the message's row lock keeps a new one from racing).
func doNotSendClearedLast(ctx context.Context, tx *sqlx.Tx, m Message) (bool, error) {
	var keys []string
	if err := tx.SelectContext(ctx, &keys, `SELECT coalesce(dedupe_key, '') FROM communication_log WHERE message_number = $1 AND step = $2
		ORDER BY at DESC, id DESC LIMIT 1`, m.Number, domain.StepRestore); err != nil {
		return false, err
	}
	return len(keys) == 1 && strings.HasPrefix(keys[0], doNotSendClearPrefix(m)), nil
}

// mayClearDoNotSend refuses to take the do-not-send flag off a message while a newer
// version of its declaration exists (rule 3: only the latest version is sent), once a
// newer version that reached the authority was removed by clean-up (rule 3: a replaced
// version stays replaced; newer_version_filed, set by Cleanup), or while
// a delivery of it has no known outcome (rule 11: it may have reached Digipoort, and
// making it due could file it twice; send/receive looks it up first).
func mayClearDoNotSend(ctx context.Context, tx *sqlx.Tx, m Message) error {
	if m.DeclarationKey != nil && m.Version != nil {
		var newer []struct {
			Number  int64         `db:"number"`
			Version int           `db:"version"`
			Status  domain.Status `db:"status"`
		}
		if err := tx.SelectContext(ctx, &newer, `SELECT number, version, status FROM messages
			WHERE declaration_key = $1 AND version > $2 ORDER BY version DESC LIMIT 1`, *m.DeclarationKey, *m.Version); err != nil {
			return err
		}
		if len(newer) > 0 {
			n := newer[0]
			return fmt.Errorf("%w: message %d is version %d of %s %s %s and marked do-not-send: version %d exists (message %d, %s) and replaced it, "+
				"and only the latest version of a declaration is sent (rule 3); send or restore message %d instead, or queue this content again "+
				"as a new version", ErrRefused, m.Number, *m.Version, m.Type, m.Subject, m.Period, n.Version, n.Number, n.Status, n.Number)
		}
	}
	var filed bool
	if err := tx.GetContext(ctx, &filed, `SELECT newer_version_filed FROM messages WHERE number = $1`, m.Number); err != nil {
		return err
	}
	if filed {
		return fmt.Errorf("%w: message %d is version %d of %s %s %s and marked do-not-send: a newer version replaced it and reached the "+
			"authority before clean-up removed it, so sending this older content now would file it over the return on file (rule 3). "+
			"If this content must be filed after all, queue it again: it becomes the latest version and goes through the version rules",
			ErrRefused, m.Number, deref(m.Version), m.Type, m.Subject, m.Period)
	}
	var open []string
	if err := tx.SelectContext(ctx, &open, `SELECT d.aanleverkenmerk FROM deliveries d WHERE d.message_number = $1 AND `+openDelivery+
		` ORDER BY d.attempt`, m.Number); err != nil {
		return err
	}
	if len(open) > 0 {
		return fmt.Errorf("%w: message %d is marked do-not-send and its delivery %s has no known outcome: it may be at Digipoort, and "+
			"making it due could file it twice (rule 11); send/receive looks the delivery up first (`starter log --message %d` says what it found), "+
			"restore it if the look-up finds it did not arrive", ErrRefused, m.Number, open[0], m.Number)
	}
	return nil
}
