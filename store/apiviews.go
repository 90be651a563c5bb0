package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"

	"koerier/domain"
)

// The API's views (rule 13 in docs/rules.md): an environment sees its own outgoing
// messages only, and of them what has been processed — env_status, never the internal
// status. Every query names the environment; another environment's message is
// ErrNotFound exactly like a missing one.

// APIMessage is one message as its environment reads it through the API.
type APIMessage struct {
	Number int64              `json:"number"`
	Type   domain.MessageType `json:"type"`
	// Channel is how the message travels; Recipient the address an e-invoice goes to.
	Channel          domain.Channel `json:"channel"`
	Recipient        string         `json:"recipient,omitempty"`
	Subject          string         `json:"subject"`
	Period           string         `json:"period"`
	Version          int            `json:"version"`
	Status           domain.Status  `json:"status"`
	DoNotSend        bool           `json:"do_not_send"`
	LastStatusChange *time.Time     `json:"last_status_change"`
	NeedsAction      bool           `json:"needs_action"`
	Action           string         `json:"action,omitempty"`
	Replies          []APIReply     `json:"replies"`
	Webhooks         WebhookCounts  `json:"webhooks"`
	// Transactions are a payment order's credit transfers with what the bank reported
	// of each (PaymentTransactionsOf); nil for every other type.
	Transactions []PaymentTxView `json:"transactions,omitempty"`
}

// APIReply is one status of the message from its channel: Digipoort's code, or the
// bank's ISO status (ACTC, ACSC, PART, RJCT, …).
type APIReply struct {
	Code        string    `json:"code"`
	Time        time.Time `json:"time"`
	Description string    `json:"description"`
}

// APIFilter selects an environment's messages; zero fields don't filter. After is the
// cursor: messages numbered after it.
type APIFilter struct {
	Status domain.Status
	Type   domain.MessageType
	Since  time.Time
	After  int64
	Limit  int
}

// API page sizes.
const (
	APIDefaultLimit = 50
	APIMaxLimit     = 200
)

// APIDocument is a file of a message: one it was queued with ("outgoing") or a reply
// document Digipoort put ready for it ("reply").
type APIDocument struct {
	ID        int64     `db:"id"         json:"id"`
	Kind      string    `db:"kind"       json:"kind"`
	Name      string    `db:"file_name"  json:"name"`
	MimeType  string    `db:"mime_type"  json:"mime_type"`
	Size      int64     `db:"size"       json:"size"`
	SHA256    string    `db:"sha256"     json:"sha256"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
}

type apiRow struct {
	Number      int64              `db:"number"`
	Type        domain.MessageType `db:"message_type"`
	Subject     string             `db:"subject"`
	Period      string             `db:"period"`
	Version     *int               `db:"version"`
	EnvStatus   domain.Status      `db:"env_status"`
	DoNotSend   bool               `db:"do_not_send"`
	Changed     time.Time          `db:"env_status_changed"`
	NeedsAction bool               `db:"needs_action"`
	Reason      string             `db:"needs_action_reason"`
	Channel     domain.Channel     `db:"channel"`
	Recipient   *string            `db:"recipient"`
}

const apiColumns = `m.number, m.message_type, m.subject, m.period, m.version, m.env_status, m.do_not_send, m.env_status_changed,
	m.needs_action, m.needs_action_reason, m.channel, m.recipient`

// APIMessage reads one of the environment's messages.
func (s *Store) APIMessage(ctx context.Context, envID, number int64) (APIMessage, error) {
	var rows []apiRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+apiColumns+` FROM messages m WHERE m.environment_id = $1 AND m.number = $2 AND m.direction = $3`,
		envID, number, domain.DirectionOut); err != nil {
		return APIMessage{}, fmt.Errorf("read message %d: %w", number, err)
	}
	if len(rows) == 0 {
		return APIMessage{}, apiNotFound(number)
	}
	out, err := s.apiMessages(ctx, rows)
	if err != nil {
		return APIMessage{}, err
	}
	return out[0], nil
}

func apiNotFound(number int64) error {
	return fmt.Errorf("%w: message %d does not exist (or was cleaned up): list your messages with GET /v1/messages", ErrNotFound, number)
}

// APIMessages lists the environment's messages by number, oldest first, from the
// cursor on; next is the cursor of the following page, 0 when there is none.
func (s *Store) APIMessages(ctx context.Context, envID int64, f APIFilter) ([]APIMessage, int64, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, 0, fmt.Errorf("%w: status %q: use one of %v", ErrInvalid, f.Status, domain.AllStatuses())
	}
	if f.After < 0 {
		return nil, 0, fmt.Errorf("%w: cursor %d: use the next cursor of the previous page", ErrInvalid, f.After)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = APIDefaultLimit
	}
	limit = min(limit, APIMaxLimit)
	var since *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	var rows []apiRow
	// Walks messages_environment (environment_id, number) from the cursor and stops
	// after a page: the filters never make it read the environment's whole history at
	// once (at worst it reads on until it has a page).
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+apiColumns+` FROM messages m
		WHERE m.environment_id = $1 AND m.number > $2 AND m.direction = $3
		  AND ($4 = '' OR m.env_status = $4) AND ($5 = '' OR m.message_type = $5) AND ($6::timestamptz IS NULL OR m.env_status_changed >= $6)
		ORDER BY m.number LIMIT $7`,
		envID, f.After, domain.DirectionOut, string(f.Status), string(f.Type), since, limit+1); err != nil {
		return nil, 0, fmt.Errorf("list messages: %w", err)
	}
	var next int64
	if len(rows) > limit {
		rows = rows[:limit]
		next = rows[limit-1].Number
	}
	out, err := s.apiMessages(ctx, rows)
	return out, next, err
}

// apiMessages adds the replies the environment may see, the webhook counts and the
// transactions of payment orders to a page of messages, in one query each.
func (s *Store) apiMessages(ctx context.Context, rows []apiRow) ([]APIMessage, error) {
	out := make([]APIMessage, 0, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	numbers := make([]int64, len(rows))
	var payments []int64
	for i, r := range rows {
		numbers[i] = r.Number
		if r.Type == domain.TypePayment {
			payments = append(payments, r.Number)
		}
	}
	// A reply is the environment's once processed: stored before the last process, or
	// any time when nothing waits to be processed (a late duplicate moves no status,
	// so no process would ever show it otherwise). Replies to an earlier attempt that
	// were never applied stay internal.
	var replies []struct {
		Number  int64     `db:"message_number"`
		Code    string    `db:"code"`
		At      time.Time `db:"occurred_at"`
		Desc    string    `db:"description"`
		ErrCode string    `db:"error_code"`
		ErrDesc string    `db:"error_description"`
	}
	if err := s.db.SelectContext(ctx, &replies, `
		SELECT e.message_number, e.code, e.occurred_at, e.description, e.error_code, e.error_description
		FROM status_events e JOIN messages m ON m.number = e.message_number
		WHERE e.message_number = ANY($1) AND e.applied AND (e.received_at <= m.processed_at OR m.status = m.env_status)
		ORDER BY e.message_number, e.occurred_at, e.id`, pq.Array(numbers)); err != nil {
		return nil, fmt.Errorf("read replies: %w", err)
	}
	var counts []struct {
		Number int64 `db:"message_number"`
		WebhookCounts
	}
	if err := s.db.SelectContext(ctx, &counts, `SELECT message_number, `+webhookCountColumns+`
		FROM webhook_events WHERE message_number = ANY($1) GROUP BY message_number`, pq.Array(numbers)); err != nil {
		return nil, fmt.Errorf("count webhook events: %w", err)
	}
	byNumber := make(map[int64]int, len(rows))
	for i, r := range rows {
		changed := r.Changed
		byNumber[r.Number] = i
		out = append(out, APIMessage{Number: r.Number, Type: r.Type, Channel: r.Channel, Recipient: deref(r.Recipient), Subject: r.Subject, Period: r.Period, Version: deref(r.Version),
			Status: r.EnvStatus, DoNotSend: r.DoNotSend, LastStatusChange: &changed, NeedsAction: r.NeedsAction, Action: r.Reason,
			Replies: []APIReply{}})
	}
	for _, r := range replies {
		desc := r.Desc
		if r.ErrCode != "" {
			desc = fmt.Sprintf("%s (%s %s)", desc, r.ErrCode, r.ErrDesc)
		}
		m := &out[byNumber[r.Number]]
		m.Replies = append(m.Replies, APIReply{Code: r.Code, Time: r.At, Description: desc})
	}
	for _, c := range counts {
		out[byNumber[c.Number]].Webhooks = c.WebhookCounts
	}
	if len(payments) > 0 {
		txs, err := s.PaymentTransactionsOf(ctx, payments)
		if err != nil {
			return nil, err
		}
		for _, n := range payments {
			out[byNumber[n]].Transactions = txs[n]
		}
	}
	return out, nil
}

// apiDocuments is the files of a message its environment may read: those it was
// queued with, and the reply documents of its Digipoort processes. A document kept
// with it only as evidence of a delivery whose outcome is unknown (store.StoreIncoming)
// is shown once that process is adopted as the delivery; reply documents, like replies,
// only once processed.
const apiDocuments = `
	SELECT a.id, 'outgoing' AS kind, a.file_name, a.mime_type, a.size, encode(a.sha256, 'hex') AS sha256, a.created_at %[1]s
	FROM messages m JOIN attachments a ON a.message_number = m.number
	WHERE m.environment_id = $1 AND m.number = $2 AND m.direction = 'out' %[2]s
	UNION ALL
	SELECT a.id, 'reply', a.file_name, a.mime_type, a.size, encode(a.sha256, 'hex'), a.created_at %[1]s
	FROM messages m JOIN messages r ON r.reply_to = m.number JOIN attachments a ON a.message_number = r.number
	WHERE m.environment_id = $1 AND m.number = $2 AND m.direction = 'out' %[2]s
	  AND EXISTS (SELECT 1 FROM deliveries d WHERE d.message_number = m.number AND d.kenmerk = r.pickup_kenmerk)
	  AND (r.queued_at <= m.processed_at OR m.status = m.env_status)
	ORDER BY 1`

// APIDocuments lists a message's files, without their content.
func (s *Store) APIDocuments(ctx context.Context, envID, number int64) ([]APIDocument, error) {
	if err := s.apiOwned(ctx, envID, number); err != nil {
		return nil, err
	}
	out := []APIDocument{}
	if err := s.db.SelectContext(ctx, &out, fmt.Sprintf(apiDocuments, "", ""), envID, number); err != nil {
		return nil, fmt.Errorf("list the documents of message %d: %w", number, err)
	}
	return out, nil
}

// APIDocument reads one file of a message with its content.
func (s *Store) APIDocument(ctx context.Context, envID, number, id int64) (APIDocument, []byte, error) {
	if err := s.apiOwned(ctx, envID, number); err != nil {
		return APIDocument{}, nil, err
	}
	var rows []struct {
		APIDocument
		Content []byte `db:"content"`
	}
	if err := s.db.SelectContext(ctx, &rows, fmt.Sprintf(apiDocuments, ", a.content", "AND a.id = $3"), envID, number, id); err != nil {
		return APIDocument{}, nil, fmt.Errorf("read document %d of message %d: %w", id, number, err)
	}
	if len(rows) == 0 {
		return APIDocument{}, nil, fmt.Errorf("%w: message %d has no document %d: list them with GET /v1/messages/%d/documents",
			ErrNotFound, number, id, number)
	}
	return rows[0].APIDocument, rows[0].Content, nil
}

// apiOwned is nil when the message is one of the environment's outgoing messages.
func (s *Store) apiOwned(ctx context.Context, envID, number int64) error {
	var ok bool
	if err := s.db.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM messages WHERE environment_id = $1 AND number = $2 AND direction = $3)`,
		envID, number, domain.DirectionOut); err != nil {
		return fmt.Errorf("read message %d: %w", number, err)
	}
	if !ok {
		return apiNotFound(number)
	}
	return nil
}
