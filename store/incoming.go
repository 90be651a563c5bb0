package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"koerier/domain"
)

// IncomingDoc is a document Digipoort put ready for pickup, or a status that named a
// kenmerk Koerier never delivered.
type IncomingDoc struct {
	PickupKenmerk   string
	Berichtkenmerk  string
	Aanleverkenmerk string
	Berichtsoort    string
	Subject         string
	FileName        string
	MimeType        string
	Content         []byte
	Aangeleverd     time.Time
	// Note says what the document is when it has no content (an unlinked status).
	Note string
}

// IncomingResult says where incoming documents went.
type IncomingResult struct {
	// Linked maps an outgoing message to the reply documents stored for it now.
	Linked map[int64][]int64
	// Unknown lists the unknown replies (ONB) stored now.
	Unknown []int64
	// Duplicates counts documents stored before.
	Duplicates int
}

// StoreIncoming keeps reply documents, linked to the message they answer by
// Digipoort's kenmerk or else by the aanleverkenmerk Koerier gave; what links to
// nothing becomes an unknown reply (ONB) with an F line in the log (rule 5). A document
// fetched again is stored once.
func (s *Store) StoreIncoming(ctx context.Context, docs []IncomingDoc) (IncomingResult, error) {
	res := IncomingResult{Linked: map[int64][]int64{}}
	if len(docs) == 0 {
		return res, nil
	}
	var kenmerken, refs []string
	for _, d := range docs {
		kenmerken = append(kenmerken, d.PickupKenmerk)
		refs = append(refs, d.Aanleverkenmerk)
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var links []struct {
			Kenmerk         *string `db:"kenmerk"`
			Aanleverkenmerk string  `db:"aanleverkenmerk"`
			Number          int64   `db:"message_number"`
			EnvironmentID   *int64  `db:"environment_id"`
			Type            string  `db:"message_type"`
		}
		if err := tx.SelectContext(ctx, &links, `
			SELECT d.kenmerk, d.aanleverkenmerk, d.message_number, m.environment_id, m.message_type
			FROM deliveries d JOIN messages m ON m.number = d.message_number
			WHERE d.kenmerk = ANY($1) OR d.aanleverkenmerk = ANY($2)`, pq.Array(kenmerken), pq.Array(refs)); err != nil {
			return err
		}
		type target struct {
			number int64
			env    *int64
			typ    string
		}
		byKenmerk, byRef := map[string]target{}, map[string]target{}
		for _, l := range links {
			t := target{l.Number, l.EnvironmentID, l.Type}
			if l.Kenmerk != nil {
				byKenmerk[*l.Kenmerk] = t
			}
			byRef[l.Aanleverkenmerk] = t
		}
		for _, d := range docs {
			t, ok := byKenmerk[d.PickupKenmerk]
			if !ok && d.Aanleverkenmerk != "" {
				t, ok = byRef[d.Aanleverkenmerk]
			}
			var num int64
			var err error
			if ok {
				err = tx.GetContext(ctx, &num, `
					INSERT INTO messages (direction, environment_id, message_type, subject, status, env_status, reply_to, pickup_kenmerk, berichtkenmerk, berichtsoort, memo)
					VALUES ('in', $1, $2, $3, 'received', 'received', $4, $5, $6, $7, $8)
					ON CONFLICT (pickup_kenmerk, berichtkenmerk) WHERE pickup_kenmerk IS NOT NULL DO NOTHING
					RETURNING number`, t.env, t.typ, truncateRunes(d.Subject, domain.MaxSubjectLen), t.number, d.PickupKenmerk, d.Berichtkenmerk, d.Berichtsoort, truncateRunes(d.Note, domain.MaxMemoLen))
			} else {
				err = tx.GetContext(ctx, &num, `
					INSERT INTO messages (direction, message_type, subtype, subject, status, env_status, pickup_kenmerk, berichtkenmerk, berichtsoort, needs_action, needs_action_reason, memo)
					VALUES ('in', 'onb', 'ONB', $1, 'received', 'received', $2, $3, $4, true, 'unknown reply: link it to a message or resolve it', $5)
					ON CONFLICT (pickup_kenmerk, berichtkenmerk) WHERE pickup_kenmerk IS NOT NULL DO NOTHING
					RETURNING number`, truncateRunes(d.Subject, domain.MaxSubjectLen), d.PickupKenmerk, d.Berichtkenmerk, d.Berichtsoort, truncateRunes(d.Note, domain.MaxMemoLen))
			}
			if isNoRows(err) {
				res.Duplicates++
				continue
			}
			if err != nil {
				return err
			}
			if len(d.Content) > 0 {
				name, mime := d.FileName, d.MimeType
				if name == "" {
					name = "bericht-" + d.Berichtkenmerk
				}
				if mime == "" {
					mime = "application/octet-stream"
				}
				sum := sha256.Sum256(d.Content)
				if _, err := tx.ExecContext(ctx, `INSERT INTO attachments (message_number, file_name, mime_type, size, sha256, content) VALUES ($1, $2, $3, $4, $5, $6)`,
					num, truncateRunes(name, domain.MaxFileNameLen), mime, len(d.Content), sum[:], d.Content); err != nil {
					return err
				}
			}
			n := num
			if ok {
				res.Linked[t.number] = append(res.Linked[t.number], num)
				orig := t.number
				if err := writeLog(ctx, tx, LogEntry{EnvironmentID: t.env, MessageNumber: &orig, Step: StepReceive, Level: LevelInfo,
					Description: fmt.Sprintf("reply %s (kenmerk %s) received for message %d, stored as message %d", d.Berichtkenmerk, d.PickupKenmerk, t.number, num)}); err != nil {
					return err
				}
				continue
			}
			res.Unknown = append(res.Unknown, num)
			if err := writeLog(ctx, tx, LogEntry{MessageNumber: &n, Step: StepReceive, Level: LevelError,
				Description: fmt.Sprintf("unknown reply (ONB) %d: kenmerk %s, berichtsoort %s, belanghebbende %s links to no message Koerier sent", num, d.PickupKenmerk, d.Berichtsoort, d.Subject),
				Information: "look it up with `starter digipoort status --kenmerk " + d.PickupKenmerk + "` and with the environment it may belong to; it is kept apart in `starter messages`"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return IncomingResult{}, fmt.Errorf("store %d incoming document(s): %w", len(docs), err)
	}
	return res, nil
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
