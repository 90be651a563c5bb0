package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"koerier/domain"
)

// ONB is an unknown reply as operators handle it (rule 5 in docs/rules.md). Open means
// nobody linked or resolved it yet: it needs action. A resolved ONB keeps subtype ONB
// with needs-action cleared; a linked one is a reply document of its message and no
// ONB any more.
type ONB struct {
	Number         int64     `db:"number"          json:"number"`
	PickupKenmerk  string    `db:"pickup_kenmerk"  json:"kenmerk"`
	Berichtkenmerk string    `db:"berichtkenmerk"  json:"berichtkenmerk"`
	Berichtsoort   string    `db:"berichtsoort"    json:"berichtsoort"`
	Subject        string    `db:"subject"         json:"subject"`
	Reason         string    `db:"needs_action_reason" json:"reason,omitempty"`
	Memo           string    `db:"memo"            json:"memo,omitempty"`
	Open           bool      `db:"needs_action"    json:"open"`
	ReceivedAt     time.Time `db:"queued_at"       json:"received"`
	Attachments    int       `db:"attachments"     json:"attachments"`
}

// StatusStandIn reports whether the ONB is a status that named an unknown kenmerk
// (kept without content under StatusBerichtkenmerk), not a document.
func (o ONB) StatusStandIn() bool { return strings.HasPrefix(o.Berichtkenmerk, statusStandInPrefix) }

const onbColumns = `m.number, COALESCE(m.pickup_kenmerk, '') AS pickup_kenmerk, COALESCE(m.berichtkenmerk, '') AS berichtkenmerk,
	COALESCE(m.berichtsoort, '') AS berichtsoort, m.subject, m.needs_action_reason, m.memo, m.needs_action, m.queued_at,
	(SELECT count(*) FROM attachments a WHERE a.message_number = m.number) AS attachments`

// UnknownReplies lists unknown replies, newest first: only the open ones unless all.
func (s *Store) UnknownReplies(ctx context.Context, all bool, limit int) ([]ONB, error) {
	out := []ONB{}
	if err := s.db.SelectContext(ctx, &out, `SELECT `+onbColumns+` FROM messages m
		WHERE m.subtype = $1 AND (m.needs_action OR $2) ORDER BY m.number DESC LIMIT $3`, domain.SubtypeONB, all, limit); err != nil {
		return nil, fmt.Errorf("list unknown replies: %w", err)
	}
	return out, nil
}

// UnknownRepliesToConfirm lists open unknown replies whose workflow Temporal has not
// confirmed (ConfirmONBWorkflows) — never, oldest first, then those not confirmed for a
// day — so that a sweep reaches every one in turn, however many are open, and asks
// Temporal about a running workflow once a day rather than every run (rule 5).
func (s *Store) UnknownRepliesToConfirm(ctx context.Context, limit int) ([]ONB, error) {
	out := []ONB{}
	if err := s.db.SelectContext(ctx, &out, `SELECT `+onbColumns+` FROM messages m
		WHERE m.subtype = $1 AND m.needs_action AND (m.onb_workflow_at IS NULL OR m.onb_workflow_at < now() - interval '1 day')
		ORDER BY m.onb_workflow_at NULLS FIRST, m.number LIMIT $2`, domain.SubtypeONB, limit); err != nil {
		return nil, fmt.Errorf("list unknown replies whose workflow is not confirmed: %w", err)
	}
	return out, nil
}

// ConfirmONBWorkflows records that Temporal has the workflows of these unknown replies
// (started now, or found running).
func (s *Store) ConfirmONBWorkflows(ctx context.Context, numbers []int64) error {
	if len(numbers) == 0 {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE messages SET onb_workflow_at = now() WHERE number = ANY($1) AND subtype = $2`,
		pq.Array(numbers), domain.SubtypeONB); err != nil {
		return fmt.Errorf("record the workflows of unknown replies %v: %w", numbers, err)
	}
	return nil
}

// UnknownReply returns one unknown reply, open or resolved.
func (s *Store) UnknownReply(ctx context.Context, number int64) (ONB, error) {
	return unknownReply(ctx, s.db, number, false)
}

// UnknownRepliesOf returns those of numbers that are unknown replies, open or resolved,
// in one query: a send/receive run starts the workflows of the replies it just stored.
// A number that is not one (linked or cleaned up meanwhile) is left out.
func (s *Store) UnknownRepliesOf(ctx context.Context, numbers []int64) ([]ONB, error) {
	out := []ONB{}
	if len(numbers) == 0 {
		return out, nil
	}
	if err := s.db.SelectContext(ctx, &out, `SELECT `+onbColumns+` FROM messages m
		WHERE m.number = ANY($1) AND m.subtype = $2 ORDER BY m.number`, pq.Array(numbers), domain.SubtypeONB); err != nil {
		return nil, fmt.Errorf("read unknown replies %v: %w", numbers, err)
	}
	return out, nil
}

func unknownReply(ctx context.Context, q sqlx.QueryerContext, number int64, lock bool) (ONB, error) {
	var o ONB
	query := `SELECT ` + onbColumns + ` FROM messages m WHERE m.number = $1 AND m.subtype = $2`
	if lock {
		query += ` FOR UPDATE`
	}
	if err := sqlx.GetContext(ctx, q, &o, query, number, domain.SubtypeONB); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return ONB{}, fmt.Errorf("%w: message %d is not an unknown reply (ONB); `starter onb list --all` lists them", ErrNotFound, number)
		}
		return ONB{}, fmt.Errorf("read unknown reply %d: %w", number, err)
	}
	return o, nil
}

// ONBLinkResult says what linking an unknown reply did.
type ONBLinkResult struct {
	Number  int64 `json:"number"`
	Message int64 `json:"message"`
	// Already is set when the reply was linked to this message before (a retry).
	Already bool `json:"already,omitempty"`
	// Code is the status a stand-in carried, applied as a reply of the message's
	// delivery (the process it names); empty for a document.
	Code string `json:"code,omitempty"`
	// Status is the message's status afterwards (the highest reply wins).
	Status domain.Status `json:"status"`
	// Reply is the reply as it was an unknown reply, for its workflow to be told even
	// on a retry (when it is no ONB any more).
	Reply ONB `json:"-"`
}

// LinkONB makes an unknown reply a reply of an outgoing message (rule 5). A document
// becomes one of the message's reply documents. A status belongs to its own Digipoort
// process: a stand-in is linked only to the message whose current delivery has the
// kenmerk it names (after `starter delivery adopt`, say), and then applied to that
// delivery through ApplyReplies, so the highest status wins as with any reply. A
// status of another process is refused, never applied to the message's own delivery:
// that would give the message another process's outcome (a 500 would mark it accepted
// for good). Refused as well: linking to a message that is not outgoing, and (when the
// reply names a belanghebbende) to a message about another subject — the subject is
// what ties a reply to a declaration; the environment follows the message.
//
// The link is one transaction. Linking again to the same message is a no-op success
// that applies a stand-in's status again (harmless: replies are stored once), so a
// retry after a crash between the link and its status finishes it.
func (s *Store) LinkONB(ctx context.Context, number, message int64, who, memo string) (ONBLinkResult, error) {
	res := ONBLinkResult{Number: number, Message: message}
	var standIn struct {
		kenmerk, code string
		at            time.Time
		note          string
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// The reply first, then the message: the same order as every other writer that
		// locks both (none does today), so two links cannot deadlock.
		var row struct {
			ONB
			Dir     domain.Direction `db:"direction"`
			Subtype string           `db:"subtype"`
			ReplyTo *int64           `db:"reply_to"`
		}
		if err := tx.GetContext(ctx, &row, `SELECT `+onbColumns+`, m.direction, m.subtype, m.reply_to FROM messages m
			WHERE m.number = $1 FOR UPDATE OF m`, number); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: message %d does not exist", ErrNotFound, number)
			}
			return err
		}
		res.Reply = row.ONB
		switch {
		case row.Subtype != domain.SubtypeONB && row.ReplyTo != nil && *row.ReplyTo == message:
			res.Already = true
		case row.Subtype != domain.SubtypeONB && row.ReplyTo != nil:
			return fmt.Errorf("%w: message %d is a reply of message %d, not an unknown reply", ErrRefused, number, *row.ReplyTo)
		case row.Subtype != domain.SubtypeONB:
			return fmt.Errorf("%w: message %d is not an unknown reply (ONB); `starter onb list` lists them", ErrRefused, number)
		case !row.Open:
			return fmt.Errorf("%w: unknown reply %d was resolved already; it stays as it is (its memo says why)", ErrRefused, number)
		}
		var msg struct {
			Dir     domain.Direction `db:"direction"`
			Env     *int64           `db:"environment_id"`
			Type    string           `db:"message_type"`
			Subject string           `db:"subject"`
			Kenmerk *string          `db:"kenmerk"`
		}
		if err := tx.GetContext(ctx, &msg, `SELECT m.direction, m.environment_id, m.message_type, m.subject,
			(SELECT d.kenmerk FROM deliveries d WHERE d.message_number = m.number AND d.attempt = m.attempt AND d.kenmerk IS NOT NULL) AS kenmerk
			FROM messages m WHERE m.number = $1 FOR UPDATE`, message); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: message %d does not exist", ErrNotFound, message)
			}
			return err
		}
		if msg.Dir != domain.DirectionOut {
			return fmt.Errorf("%w: message %d is an incoming message; link the unknown reply to the outgoing message it answers", ErrRefused, message)
		}
		// Mail and bank replies belong to the environment whose mailbox or bank folder they
		// came from (rules 22, 23): never linked across environments, and a bank report
		// only to a payment order (kept as its document; its statuses apply by OrgnlMsgId).
		var from struct {
			Env     *int64 `db:"environment_id"`
			Channel string `db:"channel"`
		}
		if err := tx.GetContext(ctx, &from, `SELECT environment_id, channel FROM messages WHERE number = $1`, number); err != nil {
			return err
		}
		if from.Env != nil && (msg.Env == nil || *msg.Env != *from.Env) {
			return fmt.Errorf("%w: unknown reply %d came in for another environment than message %d's: it can only be linked to a message of "+
				"its own environment, or resolved", ErrRefused, number, message)
		}
		if from.Channel == string(domain.ChannelBank) && msg.Type != string(domain.TypePayment) {
			return fmt.Errorf("%w: unknown reply %d is a bank report; it can only be linked to a payment order, or resolved", ErrRefused, number)
		}
		if row.Subject != "" && domain.SubjectOfNumber(row.Subject) != msg.Subject {
			return fmt.Errorf("%w: unknown reply %d is about belanghebbende %q, message %d about %q: a reply answers a declaration about "+
				"its own subject; link it to a message about %q, or resolve it", ErrRefused, number, row.Subject, message, msg.Subject,
				domain.SubjectOfNumber(row.Subject))
		}
		if row.StatusStandIn() {
			code, at, err := parseStandIn(row.Berichtkenmerk)
			if err != nil {
				return err
			}
			if msg.Kenmerk == nil || *msg.Kenmerk != row.PickupKenmerk {
				delivered := "has no delivery with a kenmerk in its current attempt"
				if msg.Kenmerk != nil {
					delivered = "was delivered as Digipoort process " + *msg.Kenmerk
				}
				return fmt.Errorf("%w: unknown reply %d is status %s of Digipoort process %s, and message %d %s: a status belongs to its own "+
					"process and is never applied to another. If %s is this message's delivery whose outcome was unknown, run "+
					"`starter delivery adopt %d %s` (it checks that) and then link the reply; otherwise resolve it: `starter onb resolve %d --memo …`",
					ErrRefused, number, code, row.PickupKenmerk, message, delivered, row.PickupKenmerk, message, row.PickupKenmerk, number)
			}
			standIn.kenmerk, standIn.code, standIn.at = *msg.Kenmerk, code, at
			standIn.note = fmt.Sprintf("unknown reply %d (kenmerk %s) linked by %s", number, row.PickupKenmerk, who)
			res.Code = code
		}
		if res.Already {
			return nil
		}
		// Subtype '' and reply_to go together (messages' CHECK): it is the message's
		// reply document from now on, and goes with it at clean-up.
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET reply_to = $2, environment_id = $3, message_type = $4, subtype = '',
			needs_action = false, needs_action_reason = '', last_status_change = now() WHERE number = $1`,
			number, message, msg.Env, msg.Type); err != nil {
			return err
		}
		what := "as its reply document"
		if res.Code != "" {
			what = fmt.Sprintf("as its reply; status %s applied to its delivery %s (the highest status wins)", res.Code, standIn.kenmerk)
		}
		return writeLog(ctx, tx, LogEntry{EnvironmentID: msg.Env, MessageNumber: &message, Step: domain.StepReceive, Level: domain.LevelInfo,
			Description: fmt.Sprintf("%s linked unknown reply (ONB) %d (kenmerk %s, %s) to message %d %s", who, number, row.PickupKenmerk,
				row.Berichtkenmerk, message, what),
			Memo: truncateRunes(memo, domain.MaxMemoLen)})
	})
	if err != nil {
		return ONBLinkResult{}, fmt.Errorf("link unknown reply %d to message %d: %w", number, message, err)
	}
	if standIn.code != "" {
		// Its own transaction (ApplyReplies'), after the link: a failure here leaves the
		// reply linked, and linking it again (the retry above) applies the status.
		r := ReplyFromCode(standIn.kenmerk, standIn.code, standIn.at)
		r.Details = standIn.note
		if _, err := s.ApplyReplies(ctx, []Reply{r}); err != nil {
			return ONBLinkResult{}, fmt.Errorf("linked unknown reply %d to message %d, but its status %s was not applied yet (link it again to "+
				"apply it): %w", number, message, standIn.code, err)
		}
	}
	if err := s.db.GetContext(ctx, &res.Status, `SELECT status FROM messages WHERE number = $1`, message); err != nil {
		return ONBLinkResult{}, fmt.Errorf("read the status of message %d: %w", message, err)
	}
	return res, nil
}

// ONBFate says what became of an unknown reply: still open, resolved, or linked to
// a message (LinkedTo).
type ONBFate struct {
	Open     bool
	LinkedTo int64
}

// UnknownReplyFate tells an unknown reply's workflow how the reply ended when it was
// handled elsewhere (the command line, while the workflow was not told). A number
// that is no message any more (cleaned up) is reported closed, linked to nothing.
func (s *Store) UnknownReplyFate(ctx context.Context, number int64) (ONBFate, error) {
	var row struct {
		Subtype     string `db:"subtype"`
		NeedsAction bool   `db:"needs_action"`
		ReplyTo     *int64 `db:"reply_to"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT subtype, needs_action, reply_to FROM messages WHERE number = $1`, number)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ONBFate{}, nil
	case err != nil:
		return ONBFate{}, fmt.Errorf("read unknown reply %d: %w", number, err)
	case row.Subtype == domain.SubtypeONB:
		return ONBFate{Open: row.NeedsAction}, nil
	case row.ReplyTo != nil:
		return ONBFate{LinkedTo: *row.ReplyTo}, nil
	}
	return ONBFate{}, nil
}

// parseStandIn reads the code and time back from StatusBerichtkenmerk.
func parseStandIn(berichtkenmerk string) (string, time.Time, error) {
	rest := strings.TrimPrefix(berichtkenmerk, statusStandInPrefix)
	code, at, ok := strings.Cut(rest, "/")
	t, err := time.Parse(time.RFC3339Nano, at)
	if !ok || code == "" || err != nil {
		return "", time.Time{}, fmt.Errorf("%w: %q is not a status kept as an unknown reply (status/<code>/<time>)", ErrInvalid, berichtkenmerk)
	}
	return code, t, nil
}

// ONBResolveResult says what resolving an unknown reply did.
type ONBResolveResult struct {
	Number  int64 `json:"number"`
	Already bool  `json:"already,omitempty"`
}

// ResolveONB marks an unknown reply handled without a message: needs-action cleared,
// the memo kept after what the reply's own memo said, and its age for clean-up counted
// from now (rule 8). Resolving again is a no-op.
func (s *Store) ResolveONB(ctx context.Context, number int64, who, memo string) (ONBResolveResult, error) {
	memo = strings.TrimSpace(memo)
	if memo == "" {
		return ONBResolveResult{}, fmt.Errorf("%w: resolving unknown reply %d needs a memo that says what it was and why nothing else is done", ErrInvalid, number)
	}
	res := ONBResolveResult{Number: number}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		o, err := unknownReply(ctx, tx, number, true)
		if err != nil {
			return err
		}
		if !o.Open {
			res.Already = true
			return nil
		}
		stamp := fmt.Sprintf("resolved by %s: %s", who, memo)
		if o.Memo != "" {
			stamp = o.Memo + "\n" + stamp
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET needs_action = false, needs_action_reason = '', memo = $2, last_status_change = now()
			WHERE number = $1`, number, truncateRunes(stamp, domain.MaxMemoLen)); err != nil {
			return err
		}
		n := number
		return writeLog(ctx, tx, LogEntry{MessageNumber: &n, Step: domain.StepReceive, Level: domain.LevelInfo,
			Description: fmt.Sprintf("%s resolved unknown reply (ONB) %d (kenmerk %s, %s) without a message", who, number, o.PickupKenmerk,
				o.Berichtkenmerk),
			Memo: truncateRunes(memo, domain.MaxMemoLen)})
	})
	if err != nil {
		return ONBResolveResult{}, fmt.Errorf("resolve unknown reply %d: %w", number, err)
	}
	return res, nil
}
