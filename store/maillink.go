package store

import (
	"context"
	"fmt"
	"time"
)

// MailDelivery is an e-invoice's delivery as a bounce or reply names it.
type MailDelivery struct {
	Number int64 `db:"message_number"`
	// Subject is the invoice's subject (its number), which a reply document names to
	// link by aanleverkenmerk (StoreIncoming).
	Subject   string    `db:"subject"`
	Attempt   int       `db:"attempt"`
	Kenmerk   *string   `db:"kenmerk"`
	StartedAt time.Time `db:"started_at"`
	// Current is set when the delivery is the message's current attempt (a reply to an
	// earlier attempt is kept, not applied).
	Current bool `db:"current"`
	// Open is set when the delivery has no recorded outcome.
	Open bool `db:"open"`
}

// MailDeliveryOf finds the e-mail delivery of the environment with this aanleverkenmerk
// (the local part of its Message-ID, rule 22): only the mailbox's own environment's
// e-invoices, so that a mail to one environment can never touch another's invoice or a
// Digipoort delivery. ErrNotFound when there is none.
func (s *Store) MailDeliveryOf(ctx context.Context, envID int64, aanleverkenmerk string) (MailDelivery, error) {
	var out []MailDelivery
	if err := s.db.SelectContext(ctx, &out, `
		SELECT d.message_number, m.subject, d.attempt, d.kenmerk, d.started_at, d.attempt = m.attempt AS current,
			(`+openDelivery+`) AS open
		FROM deliveries d JOIN messages m ON m.number = d.message_number
		WHERE d.aanleverkenmerk = $1 AND m.channel = 'email' AND m.environment_id = $2`, aanleverkenmerk, envID); err != nil {
		return MailDelivery{}, fmt.Errorf("look up the e-mail delivery %s: %w", aanleverkenmerk, err)
	}
	if len(out) == 0 {
		return MailDelivery{}, fmt.Errorf("%w: no e-invoice of this environment was sent as %s", ErrNotFound, aanleverkenmerk)
	}
	return out[0], nil
}
