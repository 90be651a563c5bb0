package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"

	"koerier/domain"
)

// EnvMessage is a message as its environment sees it: the status as of the last
// "process", never another environment's messages.
type EnvMessage struct {
	Number           int64         `db:"number" json:"number"`
	Type             string        `db:"message_type" json:"type"`
	Subject          string        `db:"subject" json:"subject"`
	Period           string        `db:"period" json:"period"`
	Version          int           `db:"version" json:"version"`
	Status           domain.Status `db:"env_status" json:"status"`
	DoNotSend        bool          `db:"do_not_send" json:"do_not_send"`
	NeedsAction      bool          `db:"needs_action" json:"needs_action"`
	LastStatusChange time.Time     `db:"env_status_changed" json:"last_status_change"`
}

// EnvironmentView lists an environment's outgoing messages, newest first.
func (s *Store) EnvironmentView(ctx context.Context, env string, limit int) ([]EnvMessage, error) {
	e, err := s.Environment(ctx, env)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1000
	}
	out := []EnvMessage{}
	if err := s.db.SelectContext(ctx, &out, `
		SELECT number, message_type, subject, period, version, env_status, do_not_send, needs_action, env_status_changed
		FROM messages WHERE environment_id = $1 AND direction = 'out'
		ORDER BY number DESC LIMIT $2`, e.ID, limit); err != nil {
		return nil, fmt.Errorf("read messages of environment %s: %w", env, err)
	}
	return out, nil
}

// Message is the operator's view of one message.
type Message struct {
	Number            int64         `db:"number" json:"number"`
	Direction         string        `db:"direction" json:"direction"`
	EnvironmentID     *int64        `db:"environment_id" json:"-"`
	Environment       *string       `db:"environment" json:"environment"`
	EnvironmentActive *bool         `db:"environment_active" json:"-"`
	Type              string        `db:"message_type" json:"type"`
	Subtype           string        `db:"subtype" json:"subtype"`
	Subject           string        `db:"subject" json:"subject"`
	Period            string        `db:"period" json:"period"`
	DeclarationKey    *string       `db:"declaration_key" json:"declaration,omitempty"`
	Version           *int          `db:"version" json:"version,omitempty"`
	LatestVersion     *int          `db:"latest_version" json:"latest_version,omitempty"`
	Berichtsoort      string        `db:"berichtsoort" json:"berichtsoort,omitempty"`
	IdentityType      string        `db:"identity_type" json:"-"`
	Fiscal            bool          `db:"fiscal" json:"-"`
	Status            domain.Status `db:"status" json:"status"`
	EnvStatus         domain.Status `db:"env_status" json:"environment_status"`
	ReportedStatus    *string       `db:"reported_status" json:"reported_status,omitempty"`
	DoNotSend         bool          `db:"do_not_send" json:"do_not_send"`
	NeedsAction       bool          `db:"needs_action" json:"needs_action"`
	NeedsActionReason string        `db:"needs_action_reason" json:"needs_action_reason,omitempty"`
	Attempt           int           `db:"attempt" json:"attempt"`
	Kenmerk           *string       `db:"kenmerk" json:"kenmerk,omitempty"`
	Aanleverkenmerk   *string       `db:"aanleverkenmerk" json:"aanleverkenmerk,omitempty"`
	QueuedAt          time.Time     `db:"queued_at" json:"queued_at"`
	LastStatusChange  time.Time     `db:"last_status_change" json:"last_status_change"`
	ReplyTo           *int64        `db:"reply_to" json:"reply_to,omitempty"`
	PickupKenmerk     *string       `db:"pickup_kenmerk" json:"pickup_kenmerk,omitempty"`
	Memo              string        `db:"memo" json:"memo,omitempty"`
}

// Handled reports rule 9's "handled correctly" (domain.HandledCorrectly).
func (m Message) Handled() bool {
	var reported *domain.Status
	if m.ReportedStatus != nil {
		r := domain.Status(*m.ReportedStatus)
		reported = &r
	}
	return domain.HandledCorrectly(m.Status, m.EnvStatus, reported)
}

// AsVersion returns the message as the version rules see it.
func (m Message) AsVersion() domain.Version {
	v := domain.Version{Number: m.Number, Status: m.Status, DoNotSend: m.DoNotSend}
	if m.Version != nil {
		v.Version = *m.Version
	}
	return v
}

// Latest is the newest version of the message's declaration.
func (m Message) Latest() int {
	if m.LatestVersion != nil {
		return *m.LatestVersion
	}
	if m.Version != nil {
		return *m.Version
	}
	return 0
}

const messageColumns = `
	m.number, m.direction, m.environment_id, e.name AS environment, e.active AS environment_active,
	m.message_type, m.subtype, m.subject, m.period, m.declaration_key, m.version,
	(SELECT max(v.version) FROM messages v WHERE v.declaration_key = m.declaration_key) AS latest_version,
	m.berichtsoort, m.identity_type, m.fiscal, m.status, m.env_status, m.reported_status, m.do_not_send, m.needs_action,
	m.needs_action_reason, m.attempt, d.kenmerk, d.aanleverkenmerk, m.queued_at, m.last_status_change,
	m.reply_to, m.pickup_kenmerk, m.memo`

const messageFrom = `
	FROM messages m
	LEFT JOIN environments e ON e.id = m.environment_id
	LEFT JOIN deliveries d ON d.message_number = m.number AND d.attempt = m.attempt`

// Message returns one message with its current delivery.
func (s *Store) Message(ctx context.Context, number int64) (Message, error) {
	var m Message
	err := s.db.GetContext(ctx, &m, `SELECT `+messageColumns+messageFrom+` WHERE m.number = $1`, number)
	if err != nil {
		if isNoRows(err) {
			return Message{}, fmt.Errorf("%w: message %d does not exist (cleaned up, or a typo?)", ErrNotFound, number)
		}
		return Message{}, fmt.Errorf("read message %d: %w", number, err)
	}
	return m, nil
}

// OperatorView lists every message, newest first, with unknown replies (ONB) apart.
func (s *Store) OperatorView(ctx context.Context, limit int) (messages, unknown []Message, err error) {
	if limit <= 0 {
		limit = 1000
	}
	messages, unknown = []Message{}, []Message{}
	if err := s.db.SelectContext(ctx, &messages, `SELECT `+messageColumns+messageFrom+` WHERE m.subtype <> 'ONB' ORDER BY m.number DESC LIMIT $1`, limit); err != nil {
		return nil, nil, fmt.Errorf("read messages: %w", err)
	}
	if err := s.db.SelectContext(ctx, &unknown, `SELECT `+messageColumns+messageFrom+` WHERE m.subtype = 'ONB' ORDER BY m.number DESC LIMIT $1`, limit); err != nil {
		return nil, nil, fmt.Errorf("read unknown replies: %w", err)
	}
	return messages, unknown, nil
}

// Brief is what a workflow start needs to show a message in the Web UI.
type Brief struct {
	Number      int64         `db:"number"`
	Environment string        `db:"environment"`
	Type        string        `db:"message_type"`
	Subject     string        `db:"subject"`
	Period      string        `db:"period"`
	Declaration string        `db:"declaration_key"`
	Version     int           `db:"version"`
	Status      domain.Status `db:"status"`
	Kenmerk     string        `db:"kenmerk"`
}

// Briefs returns the briefs of outgoing messages, in one query.
func (s *Store) Briefs(ctx context.Context, numbers []int64) (map[int64]Brief, error) {
	var rows []Brief
	if err := s.db.SelectContext(ctx, &rows, `
		SELECT m.number, COALESCE(e.name, '') AS environment, m.message_type, m.subject, m.period, COALESCE(m.declaration_key, '') AS declaration_key,
		       COALESCE(m.version, 0) AS version, m.status, COALESCE(d.kenmerk, '') AS kenmerk`+messageFrom+`
		WHERE m.number = ANY($1) AND m.direction = 'out'`, pq.Array(numbers)); err != nil {
		return nil, fmt.Errorf("read %d message briefs: %w", len(numbers), err)
	}
	out := make(map[int64]Brief, len(rows))
	for _, r := range rows {
		out[r.Number] = r
	}
	return out, nil
}
