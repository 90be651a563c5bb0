package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// SignedResponse is a signed Digipoort response about a message, kept byte for byte as
// it was received: it is the proof that a return was delivered, and when ("Proof of
// filing" in docs/rules.md). Only responses whose signature the client verified are
// kept.
type SignedResponse struct {
	ID               int64     `db:"id"                 json:"id"`
	MessageNumber    int64     `db:"message_number"     json:"message"`
	Attempt          int       `db:"attempt"            json:"attempt"`
	Kenmerk          *string   `db:"kenmerk"            json:"kenmerk,omitempty"`
	Operation        string    `db:"operation"          json:"operation"`
	RequestMessageID string    `db:"request_message_id" json:"request_message_id"`
	ReceivedAt       time.Time `db:"received_at"        json:"received_at"`
	RecordedAt       time.Time `db:"recorded_at"        json:"recorded_at"`
	Body             []byte    `db:"body"               json:"-"`
	// SHA256 is computed by Postgres from the stored body.
	SHA256 []byte `db:"sha256" json:"sha256"`
}

// KeepResult says what KeepSignedResponses did.
type KeepResult struct {
	// Kept counts the responses stored now; Duplicates those stored before (the same
	// bytes for the same message: a retried activity).
	Kept, Duplicates int
	// Gone lists the messages that no longer exist (cleaned up while the call was
	// under way): nothing is kept for them.
	Gone []int64
}

// KeepSignedResponses stores signed responses, each once per message (by the SHA-256
// of its bytes): an activity that is retried records the same response once, while
// two different responses are both kept. MessageNumber, Attempt, Operation, ReceivedAt
// and Body are required; Kenmerk is optional. The responses are stored in one
// transaction.
func (s *Store) KeepSignedResponses(ctx context.Context, rs []SignedResponse) (KeepResult, error) {
	var res KeepResult
	for _, r := range rs {
		if r.MessageNumber <= 0 || r.Attempt < 1 || r.Operation == "" || r.ReceivedAt.IsZero() || len(r.Body) == 0 {
			return res, fmt.Errorf("%w: a signed response needs a message, an attempt >= 1, an operation, a time and a body "+
				"(got message %d, attempt %d, operation %q, %d bytes)", ErrInvalid, r.MessageNumber, r.Attempt, r.Operation, len(r.Body))
		}
	}
	if len(rs) == 0 {
		return res, nil
	}
	numbers := make([]int64, len(rs))
	attempts := make([]int64, len(rs))
	kenmerken := make([]*string, len(rs))
	ops := make([]string, len(rs))
	ids := make([]string, len(rs))
	received := make([]time.Time, len(rs))
	bodies := make([][]byte, len(rs))
	for i, r := range rs {
		numbers[i], attempts[i], ops[i], ids[i], received[i], bodies[i] = r.MessageNumber, int64(r.Attempt), r.Operation, r.RequestMessageID, r.ReceivedAt, r.Body
		if r.Kenmerk != nil && *r.Kenmerk != "" {
			kenmerken[i] = r.Kenmerk
		}
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// A message cleaned up meanwhile takes nothing with it and gets nothing: its
		// rows are locked (KEY SHARE, as the foreign key would) so that clean-up cannot
		// remove one between this look and the insert.
		var present []int64
		if err := tx.SelectContext(ctx, &present,
			`SELECT number FROM messages WHERE number = ANY($1) ORDER BY number FOR KEY SHARE`, pq.Array(numbers)); err != nil {
			return err
		}
		exists := map[int64]bool{}
		for _, n := range present {
			exists[n] = true
		}
		res.Gone, res.Duplicates = nil, 0
		for _, n := range numbers {
			switch {
			case exists[n]:
				res.Duplicates++ // less the ones kept, below
			case !slices.Contains(res.Gone, n):
				res.Gone = append(res.Gone, n)
			}
		}
		var kept int
		// ON CONFLICT uses signed_responses_once (message_number, sha256).
		if err := tx.GetContext(ctx, &kept, `
			WITH rows AS (
				SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::bytea[])
					AS r(message_number, attempt, kenmerk, operation, request_message_id, received_at, body)
				WHERE r.message_number = ANY($8)
			), ins AS (
				INSERT INTO signed_responses (message_number, attempt, kenmerk, operation, request_message_id, received_at, body)
				SELECT message_number, attempt, kenmerk, operation, request_message_id, received_at, body FROM rows
				ON CONFLICT (message_number, sha256) DO NOTHING
				RETURNING 1
			)
			SELECT count(*) FROM ins`,
			pq.Array(numbers), pq.Array(attempts), pq.Array(kenmerken), pq.Array(ops), pq.Array(ids), pq.Array(received),
			pq.ByteaArray(bodies), pq.Array(present)); err != nil {
			return err
		}
		res.Kept = kept
		res.Duplicates -= kept
		return nil
	})
	if err != nil {
		return KeepResult{}, fmt.Errorf("keep %d signed Digipoort response(s) of message %d: %w", len(rs), rs[0].MessageNumber, err)
	}
	return res, nil
}

// SignedResponses returns the signed responses kept for a message, oldest first, with
// their bodies. A message that does not exist is ErrNotFound; one without responses
// gives an empty list.
func (s *Store) SignedResponses(ctx context.Context, number int64) ([]SignedResponse, error) {
	out := []SignedResponse{}
	if err := s.db.SelectContext(ctx, &out, `
		SELECT id, message_number, attempt, kenmerk, operation, request_message_id, received_at, recorded_at, body, sha256
		FROM signed_responses WHERE message_number = $1 ORDER BY received_at, id`, number); err != nil {
		return nil, fmt.Errorf("read the signed responses of message %d: %w", number, err)
	}
	if len(out) == 0 {
		var exists bool
		if err := s.db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM messages WHERE number = $1)`, number); err != nil {
			return nil, fmt.Errorf("read message %d: %w", number, err)
		}
		if !exists {
			return nil, fmt.Errorf("%w: message %d does not exist (or was cleaned up, and its signed responses with it)", ErrNotFound, number)
		}
	}
	return out, nil
}
