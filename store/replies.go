package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"koerier/domain"
	"koerier/pipeline"
)

// Reply is one Digipoort status for a delivery, already interpreted by the domain.
type Reply struct {
	Kenmerk          string
	Code             string
	Status           domain.Status
	NeedsAction      bool
	Advice           string
	OccurredAt       time.Time
	Description      string
	ErrorCode        string
	ErrorDescription string
	Details          string
	// From names who reported the status in a needs-action reason; empty is Digipoort
	// ("bank" for a payment order's status report, whose Code is an ISO 20022 status).
	From string
}

// ReplyFromCode builds a Reply for a status without a foutcode (ReplyFromStatus).
func ReplyFromCode(kenmerk, code string, at time.Time) Reply {
	return ReplyFromStatus(kenmerk, code, "", at)
}

// ReplyFromStatus builds a Reply with the domain's reading of a status: its code and
// its foutcode together (domain.InterpretStatus: a 420 with AFS600 has failed).
func ReplyFromStatus(kenmerk, code, foutcode string, at time.Time) Reply {
	info := domain.InterpretStatus(code, foutcode)
	return Reply{
		Kenmerk:     kenmerk,
		Code:        info.Code,
		Status:      info.Status,
		NeedsAction: info.NeedsAction,
		Advice:      info.Advice,
		OccurredAt:  at,
		Description: info.Meaning,
		ErrorCode:   strings.TrimSpace(foutcode),
	}
}

// StoredReply is a reply as kept in a message's history.
type StoredReply struct {
	EventID          int64         `db:"id"                json:"id"`
	MessageNumber    int64         `db:"message_number"    json:"message"`
	Attempt          int           `db:"attempt"           json:"attempt"`
	Kenmerk          string        `db:"kenmerk"           json:"kenmerk"`
	Code             string        `db:"code"              json:"code"`
	Status           domain.Status `db:"status"            json:"status"`
	OccurredAt       time.Time     `db:"occurred_at"       json:"time"`
	Description      string        `db:"description"       json:"description"`
	ErrorCode        string        `db:"error_code"        json:"error_code,omitempty"`
	ErrorDescription string        `db:"error_description" json:"error_description,omitempty"`
	Details          string        `db:"details"           json:"details,omitempty"`
	Applied          bool          `db:"applied"           json:"applied"`
}

// View is the reply as a declaration's workflow shows it.
func (r StoredReply) View() pipeline.Reply {
	return pipeline.Reply{EventID: r.EventID, Kenmerk: r.Kenmerk, Code: r.Code, Status: r.Status, Time: r.OccurredAt,
		Description: r.Description, ErrorCode: r.ErrorCode, Applied: r.Applied}
}

// ApplyResult says what a batch of replies did.
type ApplyResult struct {
	// New are the replies stored by this call.
	New []StoredReply
	// Duplicates counts replies that were stored before (every receive looks back
	// 30 days, so most statuses arrive more than once).
	Duplicates int
	// Unlinked are replies whose kenmerk belongs to no delivery: unknown replies.
	Unlinked []Reply
	// Raised maps each message whose status went up to its new status.
	Raised map[int64]domain.Status
	// NeedsAction lists messages that a reply marked as needing an operator.
	NeedsAction []int64
}

// ApplyReplies stores a batch of replies and raises each message to the highest
// status among its replies — in a handful of statements for the whole batch, and
// decided in SQL so that two batches at once cannot lower a status (rule 4 in docs/rules.md). A reply to
// an earlier delivery attempt is kept but not applied: the message was restored and
// resent since.
func (s *Store) ApplyReplies(ctx context.Context, replies []Reply) (ApplyResult, error) {
	if len(replies) == 0 {
		return ApplyResult{Raised: map[int64]domain.Status{}}, nil
	}
	var res ApplyResult
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		res, err = applyReplies(ctx, tx, replies)
		return err
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply %d replies: %w", len(replies), err)
	}
	return res, nil
}

// applyReplies is ApplyReplies inside a transaction of the caller's, for a caller that
// stores more with the replies all or nothing (a bank's status report, with its
// document and its transactions' statuses: ApplyBankReport).
func applyReplies(ctx context.Context, tx *sqlx.Tx, replies []Reply) (ApplyResult, error) {
	res := ApplyResult{Raised: map[int64]domain.Status{}}
	if len(replies) == 0 {
		return res, nil
	}
	kenmerken := make([]string, 0, len(replies))
	for _, r := range replies {
		if !r.Status.Valid() || r.Status == domain.StatusReceived {
			return res, fmt.Errorf("%w: reply %s/%s has status %q", ErrInvalid, r.Kenmerk, r.Code, r.Status)
		}
		kenmerken = append(kenmerken, r.Kenmerk)
	}
	err := func() error {
		// Lock the messages in number order before reading their attempts: a restore
		// that commits meanwhile must be seen (its new attempt makes these replies
		// stale), and concurrent batches queue up behind each other instead of
		// deadlocking on rows taken in different orders.
		var numbers []int64
		if err := tx.SelectContext(ctx, &numbers, `
			SELECT number FROM messages WHERE number IN (SELECT message_number FROM deliveries WHERE kenmerk = ANY($1))
			ORDER BY number FOR UPDATE`, pq.Array(kenmerken)); err != nil {
			return err
		}
		var links []struct {
			Kenmerk string `db:"kenmerk"`
			Number  int64  `db:"message_number"`
			Attempt int    `db:"attempt"`
			Current int    `db:"current"`
		}
		if len(numbers) > 0 {
			if err := tx.SelectContext(ctx, &links, `
				SELECT d.kenmerk, d.message_number, d.attempt, m.attempt AS current
				FROM deliveries d JOIN messages m ON m.number = d.message_number
				WHERE d.kenmerk = ANY($1)`, pq.Array(kenmerken)); err != nil {
				return err
			}
		}
		type link struct {
			number           int64
			attempt, current int
		}
		byKenmerk := make(map[string]link, len(links))
		for _, l := range links {
			byKenmerk[l.Kenmerk] = link{l.Number, l.Attempt, l.Current}
		}
		var (
			nums                                                 []int64
			attempts                                             []int
			kms, codes, statuses, descs, ecodes, edescs, details []string
			ats                                                  []time.Time
			applied                                              []bool
		)
		for _, r := range replies {
			l, ok := byKenmerk[r.Kenmerk]
			if !ok {
				res.Unlinked = append(res.Unlinked, r)
				continue
			}
			nums = append(nums, l.number)
			attempts = append(attempts, l.attempt)
			kms = append(kms, r.Kenmerk)
			codes = append(codes, r.Code)
			statuses = append(statuses, string(r.Status))
			ats = append(ats, r.OccurredAt.UTC())
			descs = append(descs, r.Description)
			ecodes = append(ecodes, r.ErrorCode)
			edescs = append(edescs, r.ErrorDescription)
			details = append(details, r.Details)
			applied = append(applied, l.attempt == l.current)
		}
		if len(nums) == 0 {
			return nil
		}
		if err := tx.SelectContext(ctx, &res.New, `
			INSERT INTO status_events (message_number, attempt, kenmerk, code, status, occurred_at, description, error_code,
				error_description, details, applied)
			SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[],
				$9::text[], $10::text[], $11::bool[])
			ON CONFLICT (kenmerk, code, occurred_at, error_code) DO NOTHING
			RETURNING id, message_number, attempt, kenmerk, code, status, occurred_at, description, error_code, error_description, details, applied`,
			pq.Array(nums), pq.Array(attempts), pq.Array(kms), pq.Array(codes), pq.Array(statuses), pq.Array(ats),
			pq.Array(descs), pq.Array(ecodes), pq.Array(edescs), pq.Array(details), pq.Array(applied)); err != nil {
			return err
		}
		res.Duplicates = len(nums) - len(res.New)
		// Only replies stored now may move a status; needs-action comes from the codes. A
		// status is the same one fetched again only with the same foutcode: Digipoort
		// reports the 420 that ends its retries (AFS600) with the time of an earlier 420,
		// or updates that one (status_events_once_per_foutcode, migration 00004).
		type key struct {
			kenmerk, code, foutcode string
			at                      int64
		}
		given := make(map[key]Reply, len(replies))
		for _, r := range replies {
			given[key{r.Kenmerk, r.Code, r.ErrorCode, r.OccurredAt.UnixNano()}] = r
		}
		var upNums, needNums []int64
		var upStatuses, needReasons []string
		for _, n := range res.New {
			if !n.Applied {
				continue
			}
			upNums = append(upNums, n.MessageNumber)
			upStatuses = append(upStatuses, string(n.Status))
			if r := given[key{n.Kenmerk, n.Code, n.ErrorCode, n.OccurredAt.UnixNano()}]; r.NeedsAction {
				code := r.Code
				if r.ErrorCode != "" {
					code += " " + r.ErrorCode
				}
				needNums = append(needNums, n.MessageNumber)
				from := r.From
				if from == "" {
					from = "Digipoort"
				}
				needReasons = append(needReasons, fmt.Sprintf("%s status %s (%s): %s", from, code, r.Description, r.Advice))
			}
		}
		if len(upNums) == 0 {
			return nil
		}
		var raised []struct {
			Number int64  `db:"number"`
			Status string `db:"status"`
		}
		if err := tx.SelectContext(ctx, &raised, `
			WITH best AS (
				SELECT DISTINCT ON (u.number) u.number, u.status, ms.rank
				FROM unnest($1::bigint[], $2::text[]) AS u(number, status)
				JOIN message_statuses ms ON ms.status = u.status
				ORDER BY u.number, ms.rank DESC
			)
			UPDATE messages m SET status = best.status, last_status_change = now()
			FROM best
			WHERE m.number = best.number
			  AND best.rank > (SELECT rank FROM message_statuses WHERE status = m.status)
			RETURNING m.number, m.status`,
			pq.Array(upNums), pq.Array(upStatuses)); err != nil {
			return err
		}
		for _, r := range raised {
			res.Raised[r.Number] = domain.Status(r.Status)
		}
		if len(needNums) == 0 {
			return nil
		}
		if err := tx.SelectContext(ctx, &res.NeedsAction, `
			UPDATE messages m SET needs_action = true, needs_action_reason = u.reason
			FROM (SELECT DISTINCT ON (number) number, reason FROM unnest($1::bigint[], $2::text[]) AS u(number, reason) ORDER BY number) u
			WHERE m.number = u.number
			RETURNING m.number`, pq.Array(needNums), pq.Array(needReasons)); err != nil {
			return err
		}
		return nil
	}()
	if err != nil {
		return ApplyResult{}, err
	}
	return res, nil
}

// Replies returns every reply kept for a message, oldest first.
func (s *Store) Replies(ctx context.Context, number int64) ([]StoredReply, error) {
	var out []StoredReply
	if err := s.db.SelectContext(ctx, &out,
		`SELECT id, message_number, attempt, kenmerk, code, status, occurred_at, description, error_code, error_description, details, applied
		FROM status_events WHERE message_number = $1 ORDER BY occurred_at, id`, number); err != nil {
		return nil, fmt.Errorf("read replies of message %d: %w", number, err)
	}
	return out, nil
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
