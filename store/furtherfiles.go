package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"koerier/domain"
)

// furtherFilesHeld is why a message with further files is not delivered: its type, with
// this installation's settings, takes none ("Further files", rule 17). It starts with
// domain.DeliveryTrouble: a delivery round that waits for it keeps it as the reason, and
// the delivery, once made, ends it.
func furtherFilesHeld(number int64, spec domain.TypeSpec, further []string) string {
	process := spec.Berichtsoort
	if process == "" {
		process = "(none configured)"
	}
	return fmt.Sprintf(domain.DeliveryTrouble+"message %d is held: it has %d further file(s) beside the declaration (%s), and %s messages take "+
		"none: Digipoort's process %s is not known to take attachments (berichtBijlagen, rule 17). It was queued when Koerier dropped "+
		"further files; now it neither drops a file nor sends files the process may refuse. Decide: queue the "+
		"declaration again alone (the new version replaces this one), or, if Logius confirmed that the process takes attachments, set "+
		"KOERIER_BIJLAGEN=%s=yes and restart the worker: this message is then delivered with its files",
		number, len(further), strings.Join(further, ", "), spec.Type, process, spec.Type)
}

// holdFurtherFiles says why message m must not be delivered now, or "": it was queued
// with further files before Koerier sent them (migration 00004 marked it), and its type
// takes none. Such a message, restored or never sent, would otherwise be delivered with
// berichtBijlagen its process may refuse, or accept without them. A message queued since
// goes as it was queued, whatever the settings are now. A hold needs an operator, with an
// F line, once.
func (s *Store) holdFurtherFiles(ctx context.Context, tx *sqlx.Tx, m Message) (string, error) {
	spec, err := s.catalog.Lookup(domain.MessageType(m.Type))
	if err != nil || spec.Attachments {
		return "", nil
	}
	var names []string
	if err := tx.SelectContext(ctx, &names, `SELECT a.file_name FROM attachments a JOIN messages m ON m.number = a.message_number
		WHERE m.number = $1 AND m.further_files_unconfirmed ORDER BY a.id`, m.Number); err != nil {
		return "", err
	}
	if len(names) < 2 {
		return "", nil
	}
	reason := furtherFilesHeld(m.Number, spec, names[1:])
	_, err = markNeedsAction(ctx, tx, domain.StepSend, []needsAction{{number: m.Number, reason: reason,
		dedupe: fmt.Sprintf("held-files/%d/%d", m.Number, m.Attempt)}})
	return reason, err
}

// heldByMigration marks the messages queued with further files so far (they were
// queued when further files were dropped), and lists the open ones (due, not
// do-not-send) whose type does not take them, with the reason they are held, so that an
// operator sees them before a delivery round does. Goose runs it once, before anything
// is queued under the new rules.
func heldByMigration(ctx context.Context, tx *sqlx.Tx, cat domain.Catalog) ([]needsAction, error) {
	if _, err := tx.ExecContext(ctx, `UPDATE messages m SET further_files_unconfirmed = true
		WHERE m.direction = $1 AND NOT m.further_files_unconfirmed AND (SELECT count(*) FROM attachments a WHERE a.message_number = m.number) > 1`,
		domain.DirectionOut); err != nil {
		return nil, err
	}
	var rows []struct {
		Number  int64          `db:"number"`
		Attempt int            `db:"attempt"`
		Type    string         `db:"message_type"`
		Files   pq.StringArray `db:"files"`
	}
	if err := tx.SelectContext(ctx, &rows, `
		SELECT m.number, m.attempt, m.message_type, array_agg(a.file_name ORDER BY a.id) AS files
		FROM messages m JOIN attachments a ON a.message_number = m.number
		WHERE m.direction = $1 AND m.status = ANY($2) AND NOT m.do_not_send AND m.further_files_unconfirmed
		GROUP BY m.number HAVING count(*) > 1 ORDER BY m.number`, domain.DirectionOut, pq.Array(domain.DueStatuses())); err != nil {
		return nil, err
	}
	var out []needsAction
	for _, r := range rows {
		spec, err := cat.Lookup(domain.MessageType(r.Type))
		if err != nil || spec.Attachments {
			continue
		}
		out = append(out, needsAction{number: r.Number, reason: furtherFilesHeld(r.Number, spec, r.Files[1:]),
			dedupe: fmt.Sprintf("held-files/%d/%d", r.Number, r.Attempt)})
	}
	return out, nil
}
