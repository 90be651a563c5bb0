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
// nothing becomes an unknown reply (ONB) with an F line in the log (rule 5 in docs/rules.md). A document
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
			Subject         string  `db:"subject"`
		}
		if err := tx.SelectContext(ctx, &links, `
			SELECT d.kenmerk, d.aanleverkenmerk, d.message_number, m.environment_id, m.message_type, m.subject
			FROM deliveries d JOIN messages m ON m.number = d.message_number
			WHERE d.kenmerk = ANY($1) OR d.aanleverkenmerk = ANY($2)`, pq.Array(kenmerken), pq.Array(refs)); err != nil {
			return err
		}
		type target struct {
			number  int64
			env     *int64
			typ     string
			subject string
			// evidence is set for a document of a process Koerier does not know that
			// may be the lost answer of this message's delivery.
			evidence bool
		}
		byKenmerk, byRef := map[string]target{}, map[string]target{}
		for _, l := range links {
			t := target{number: l.Number, env: l.EnvironmentID, typ: l.Type, subject: l.Subject}
			if l.Kenmerk != nil {
				byKenmerk[*l.Kenmerk] = t
			}
			byRef[l.Aanleverkenmerk] = t
		}
		// Messages whose delivery has no known outcome, by subject and berichtsoort: a
		// document of a process Koerier does not know with the same ones may be the
		// lost answer, and is kept with that message as evidence, not as an unknown reply.
		// Digipoort names the belanghebbende as it was sent (NL001000044B37 for type BTW);
		// subjects are stored in one form (001000044B37): compare in that form.
		subjectsIn := make([]string, 0, len(docs))
		for _, d := range docs {
			subjectsIn = append(subjectsIn, domain.SubjectOfNumber(d.Subject))
		}
		var uncertainRows []struct {
			Number        int64  `db:"number"`
			EnvironmentID *int64 `db:"environment_id"`
			Type          string `db:"message_type"`
			Subject       string `db:"subject"`
			Berichtsoort  string `db:"berichtsoort"`
		}
		if err := tx.SelectContext(ctx, &uncertainRows, `
			SELECT m.number, m.environment_id, m.message_type, m.subject, m.berichtsoort
			FROM messages m JOIN deliveries d ON d.message_number = m.number AND d.attempt = m.attempt
			WHERE `+openDelivery+` AND m.subject = ANY($1)`, pq.Array(subjectsIn)); err != nil {
			return err
		}
		uncertain := func(d IncomingDoc) []target {
			var out []target
			for _, u := range uncertainRows {
				if u.Subject == domain.SubjectOfNumber(d.Subject) && (d.Berichtsoort == "" || u.Berichtsoort == d.Berichtsoort) {
					out = append(out, target{number: u.Number, env: u.EnvironmentID, typ: u.Type, subject: u.Subject, evidence: true})
				}
			}
			return out
		}
		// One statement per kind of row for the whole batch: messages, attachments, log.
		var (
			envIDs                                                             []*int64
			types, subtypes, subjects, kms, bks, soorts, memos, reasons, names []string
			replyTo                                                            []*int64
			needs                                                              []bool
			targets                                                            = make([]*target, len(docs))
		)
		for i, d := range docs {
			// Digipoort's kenmerk is its own process id: unambiguous. An aanleverkenmerk
			// is only Koerier's word, which another system may happen to use too; it
			// links only when the belanghebbende is the message's subject.
			t, ok := byKenmerk[d.PickupKenmerk]
			unknownWhy := "unknown reply: link it to a message or resolve it"
			if !ok && d.Aanleverkenmerk != "" {
				if ref, found := byRef[d.Aanleverkenmerk]; found && (ref.subject == d.Subject || ref.subject == domain.SubjectOfNumber(d.Subject)) {
					t, ok = ref, true
				} else if found {
					unknownWhy = fmt.Sprintf("unknown reply: its aanleverkenmerk %s is that of message %d, but its belanghebbende %q is not the message's "+
						"subject %q (another system on the same certificate?): link it to a message or resolve it", d.Aanleverkenmerk, ref.number, d.Subject,
						ref.subject)
				}
			}
			if !ok && d.Subject != "" {
				switch cands := uncertain(d); len(cands) {
				case 0:
				case 1:
					t, ok = cands[0], true
				default:
					var nums []string
					for _, c := range cands {
						nums = append(nums, fmt.Sprint(c.number))
					}
					unknownWhy = fmt.Sprintf("unknown reply: it may be the lost answer of one of messages %s, whose deliveries have no known outcome; "+
						"decide with `starter delivery adopt <number> %s`, or resolve it", strings.Join(nums, ", "), d.PickupKenmerk)
				}
			}
			if ok {
				t := t
				targets[i] = &t
				envIDs, replyTo = append(envIDs, t.env), append(replyTo, &t.number)
				types, subtypes, needs, reasons = append(types, t.typ), append(subtypes, ""), append(needs, false), append(reasons, "")
			} else {
				envIDs, replyTo = append(envIDs, nil), append(replyTo, nil)
				types, subtypes, needs = append(types, string(domain.TypeUnknownONB)), append(subtypes, domain.SubtypeONB), append(needs, true)
				reasons = append(reasons, unknownWhy)
			}
			subjects = append(subjects, truncateRunes(d.Subject, domain.MaxSubjectLen))
			kms, bks, soorts = append(kms, d.PickupKenmerk), append(bks, d.Berichtkenmerk), append(soorts, d.Berichtsoort)
			memos = append(memos, truncateRunes(d.Note, domain.MaxMemoLen))
			name := d.FileName
			if name == "" {
				name = "bericht-" + d.Berichtkenmerk
			}
			names = append(names, truncateRunes(name, domain.MaxFileNameLen))
		}
		var inserted []struct {
			Number  int64  `db:"number"`
			Kenmerk string `db:"pickup_kenmerk"`
			Bericht string `db:"berichtkenmerk"`
		}
		if err := tx.SelectContext(ctx, &inserted, `
			INSERT INTO messages (direction, environment_id, message_type, subtype, subject, status, env_status, reply_to, pickup_kenmerk,
				berichtkenmerk, berichtsoort, needs_action, needs_action_reason, memo)
			SELECT $12, u.env, u.typ, u.sub, u.subject, $13, $13, u.reply_to, u.km, u.bk, u.soort, u.needs, u.reason, u.memo
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::bool[],
				$10::text[], $11::text[])
			     AS u(env, typ, sub, subject, reply_to, km, bk, soort, needs, reason, memo)
			ON CONFLICT (pickup_kenmerk, berichtkenmerk) WHERE pickup_kenmerk IS NOT NULL DO NOTHING
			RETURNING number, pickup_kenmerk, berichtkenmerk`,
			pq.Array(envIDs), pq.Array(types), pq.Array(subtypes), pq.Array(subjects), pq.Array(replyTo), pq.Array(kms), pq.Array(bks),
			pq.Array(soorts), pq.Array(needs), pq.Array(reasons), pq.Array(memos), domain.DirectionIn, domain.StatusReceived); err != nil {
			return err
		}
		number := make(map[[2]string]int64, len(inserted))
		for _, r := range inserted {
			number[[2]string{r.Kenmerk, r.Bericht}] = r.Number
		}
		res.Duplicates = len(docs) - len(inserted)
		var attNums, attSizes []int64
		var attNames, attMimes []string
		var attSums, attContents [][]byte
		var logs []LogEntry
		for i, d := range docs {
			num, ok := number[[2]string{d.PickupKenmerk, d.Berichtkenmerk}]
			if !ok {
				continue
			}
			delete(number, [2]string{d.PickupKenmerk, d.Berichtkenmerk}) // a doc twice in one batch counts once
			if len(d.Content) > 0 {
				mime := d.MimeType
				if mime == "" {
					mime = "application/octet-stream"
				}
				sum := sha256.Sum256(d.Content)
				attNums, attSizes = append(attNums, num), append(attSizes, int64(len(d.Content)))
				attNames, attMimes = append(attNames, names[i]), append(attMimes, mime)
				attSums, attContents = append(attSums, sum[:]), append(attContents, d.Content)
			}
			n := num
			if t := targets[i]; t != nil {
				res.Linked[t.number] = append(res.Linked[t.number], num)
				orig := t.number
				if t.evidence {
					logs = append(logs, LogEntry{EnvironmentID: t.env, MessageNumber: &orig, Step: domain.StepReceive, Level: domain.LevelError,
						Description: fmt.Sprintf("reply %s of Digipoort process %s, which Koerier does not know, is about the subject and berichtsoort of "+
							"message %d, whose delivery has no known outcome: kept with it as evidence (stored as message %d)", d.Berichtkenmerk,
							d.PickupKenmerk, t.number, num),
						Information: fmt.Sprintf("the look-up of the delivery asks Digipoort about this process too; if it is the delivery and the "+
							"look-up cannot tell: `starter delivery adopt %d %s`", t.number, d.PickupKenmerk)})
					continue
				}
				logs = append(logs, LogEntry{EnvironmentID: t.env, MessageNumber: &orig, Step: domain.StepReceive, Level: domain.LevelInfo,
					Description: fmt.Sprintf(
						"reply %s (kenmerk %s) received for message %d, stored as message %d", d.Berichtkenmerk, d.PickupKenmerk, t.number, num,
					)})
				continue
			}
			res.Unknown = append(res.Unknown, num)
			logs = append(logs, LogEntry{MessageNumber: &n, Step: domain.StepReceive, Level: domain.LevelError,
				Description: fmt.Sprintf(
					"unknown reply (ONB) %d: kenmerk %s, berichtsoort %s, belanghebbende %s links to no message Koerier sent", num, d.PickupKenmerk,
					d.Berichtsoort, d.Subject,
				),
				Information: "look it up with `starter digipoort status --kenmerk " + d.PickupKenmerk + "` and with the environment it may " +
					"belong to; it is kept apart in `starter messages`"})
		}
		if len(attNums) > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO attachments (message_number, file_name, mime_type, size, sha256, content)
				SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bytea[], $6::bytea[])`,
				pq.Array(attNums), pq.Array(attNames), pq.Array(attMimes), pq.Array(attSizes), pq.ByteaArray(attSums), pq.ByteaArray(attContents)); err != nil {
				return err
			}
		}
		return writeLogs(ctx, tx, logs)
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

// statusStandInPrefix starts the berichtkenmerk of a status kept as an unknown reply
// (it has none of its own), so that the same status fetched again is stored once.
const statusStandInPrefix = "status/"

// StatusBerichtkenmerk stands in for the berichtkenmerk of a status kept as an
// incoming message.
func StatusBerichtkenmerk(code string, at time.Time) string {
	return statusStandInPrefix + code + "/" + at.UTC().Format(time.RFC3339Nano)
}

// PickupCounts returns how many documents are stored per pickup kenmerk. Statuses
// kept under a kenmerk are not documents: counting them would make a pickup think
// the kenmerk's documents were fetched already.
func (s *Store) PickupCounts(ctx context.Context, kenmerken []string) (map[string]int, error) {
	var rows []struct {
		Kenmerk string `db:"pickup_kenmerk"`
		N       int    `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &rows,
		`SELECT pickup_kenmerk, count(*) AS n FROM messages WHERE pickup_kenmerk = ANY($1) AND berichtkenmerk NOT LIKE $2 || '%'
		GROUP BY pickup_kenmerk`, pq.Array(kenmerken), statusStandInPrefix); err != nil {
		return nil, fmt.Errorf("count stored pickups: %w", err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Kenmerk] = r.N
	}
	return out, nil
}
