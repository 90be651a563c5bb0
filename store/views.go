package store

import (
	"context"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"koerier/domain"
	"koerier/pipeline"
)

// EnvMessage is a message as its environment sees it: the status as of the last
// "process", never another environment's messages.
type EnvMessage struct {
	Number           int64         `db:"number"             json:"number"`
	Type             string        `db:"message_type"       json:"type"`
	Subject          string        `db:"subject"            json:"subject"`
	Period           string        `db:"period"             json:"period"`
	Version          int           `db:"version"            json:"version"`
	Status           domain.Status `db:"env_status"         json:"status"`
	DoNotSend        bool          `db:"do_not_send"        json:"do_not_send"`
	NeedsAction      bool          `db:"needs_action"       json:"needs_action"`
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
		FROM messages WHERE environment_id = $1 AND direction = $3
		ORDER BY number DESC LIMIT $2`, e.ID, limit, domain.DirectionOut); err != nil {
		return nil, fmt.Errorf("read messages of environment %s: %w", env, err)
	}
	return out, nil
}

// Message is the operator's view of one message.
type Message struct {
	Number            int64            `db:"number"              json:"number"`
	Direction         domain.Direction `db:"direction"           json:"direction"`
	EnvironmentID     *int64           `db:"environment_id"      json:"-"`
	Environment       *string          `db:"environment"         json:"environment"`
	EnvironmentActive *bool            `db:"environment_active"  json:"-"`
	AutoSend          *bool            `db:"auto_send"           json:"-"`
	AutoProcess       *bool            `db:"auto_process"        json:"-"`
	Type              string           `db:"message_type"        json:"type"`
	Subtype           string           `db:"subtype"             json:"subtype"`
	Subject           string           `db:"subject"             json:"subject"`
	Period            string           `db:"period"              json:"period"`
	DeclarationKey    *string          `db:"declaration_key"     json:"declaration,omitempty"`
	Version           *int             `db:"version"             json:"version"`
	LatestVersion     *int             `db:"latest_version"      json:"latest_version,omitempty"`
	Berichtsoort      string           `db:"berichtsoort"        json:"berichtsoort,omitempty"`
	IdentityType      string           `db:"identity_type"       json:"-"`
	Fiscal            bool             `db:"fiscal"              json:"-"`
	Status            domain.Status    `db:"status"              json:"status"`
	EnvStatus         domain.Status    `db:"env_status"          json:"environment_status"`
	ReportedStatus    *string          `db:"reported_status"     json:"reported_status,omitempty"`
	DoNotSend         bool             `db:"do_not_send"         json:"do_not_send"`
	NeedsAction       bool             `db:"needs_action"        json:"needs_action"`
	NeedsActionReason string           `db:"needs_action_reason" json:"needs_action_reason,omitempty"`
	Attempt           int              `db:"attempt"             json:"attempt"`
	Kenmerk           *string          `db:"kenmerk"             json:"kenmerk,omitempty"`
	Aanleverkenmerk   *string          `db:"aanleverkenmerk"     json:"aanleverkenmerk,omitempty"`
	QueuedAt          time.Time        `db:"queued_at"           json:"queued_at"`
	LastStatusChange  time.Time        `db:"last_status_change"  json:"last_status_change"`
	ReplyTo           *int64           `db:"reply_to"            json:"reply_to,omitempty"`
	PickupKenmerk     *string          `db:"pickup_kenmerk"      json:"pickup_kenmerk,omitempty"`
	Memo              string           `db:"memo"                json:"memo,omitempty"`
	// Channel is how the message travels: Digipoort, or e-mail for an e-invoice.
	Channel domain.Channel `db:"channel" json:"channel"`
	// Recipient is the address an outgoing e-invoice goes to.
	Recipient *string `db:"recipient" json:"recipient,omitempty"`
	// DeliveryOpen is set while the current attempt's delivery has no known outcome.
	DeliveryOpen bool `db:"delivery_open" json:"delivery_open"`
	// DeliveryError is the last error of the current attempt's delivery while it has
	// no kenmerk (a failed or unfinished delivery); empty otherwise.
	DeliveryError string `db:"delivery_error" json:"delivery_error,omitempty"`
}

// Action is the page's "Berichtactie": why the message needs an operator, in full, or
// else the error of its current, unfinished delivery; empty when nothing went wrong.
func (m Message) Action() string {
	if m.NeedsAction && m.NeedsActionReason != "" {
		return m.NeedsActionReason
	}
	return m.DeliveryError
}

// Handled reports whether the message was "handled correctly" in the sense of rule 9
// (docs/rules.md): domain.HandledCorrectly.
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
	m.number, m.direction, m.environment_id, e.name AS environment, e.active AS environment_active, e.auto_send, e.auto_process,
	m.message_type, m.subtype, m.subject, m.period, m.declaration_key, m.version,
	(SELECT max(v.version) FROM messages v WHERE v.declaration_key = m.declaration_key) AS latest_version,
	m.berichtsoort, m.identity_type, m.fiscal, m.status, m.env_status, m.reported_status, m.do_not_send, m.needs_action,
	m.needs_action_reason, m.attempt, d.kenmerk, d.aanleverkenmerk, m.queued_at, m.last_status_change,
	m.reply_to, m.pickup_kenmerk, m.memo, m.channel, m.recipient,
	(d.message_number IS NOT NULL AND d.kenmerk IS NULL AND d.failed_at IS NULL AND d.closed_at IS NULL) AS delivery_open,
	COALESCE(CASE WHEN d.kenmerk IS NULL THEN d.last_error END, '') AS delivery_error`

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
	if err := s.db.SelectContext(ctx, &messages,
		`SELECT `+messageColumns+messageFrom+` WHERE m.subtype <> 'ONB' ORDER BY m.number DESC LIMIT $1`, limit); err != nil {
		return nil, nil, fmt.Errorf("read messages: %w", err)
	}
	if err := s.db.SelectContext(ctx, &unknown,
		`SELECT `+messageColumns+messageFrom+` WHERE m.subtype = 'ONB' ORDER BY m.number DESC LIMIT $1`, limit); err != nil {
		return nil, nil, fmt.Errorf("read unknown replies: %w", err)
	}
	return messages, unknown, nil
}

// Declaration is the message as the pipeline sees it (without its replies): the one
// place where a stored message becomes a pipeline.Message.
func (m Message) Declaration() pipeline.Message {
	reported := m.ReportedStatus != nil && *m.ReportedStatus == string(m.Status)
	return pipeline.Message{
		Number: m.Number, Direction: m.Direction, Environment: deref(m.Environment), EnvironmentActive: deref(m.EnvironmentActive),
		AutoSend: deref(m.AutoSend), AutoProcess: deref(m.AutoProcess), Type: m.Type, Channel: string(m.Channel), Subject: m.Subject, Period: m.Period,
		Declaration: deref(m.DeclarationKey), Version: deref(m.Version), LatestVersion: m.Latest(), Attempt: m.Attempt,
		Status: m.Status, EnvStatus: m.EnvStatus, Reported: reported, DoNotSend: m.DoNotSend, NeedsAction: m.NeedsAction,
		NeedsActionReason: m.NeedsActionReason, Kenmerk: deref(m.Kenmerk), DeliveryOpen: m.DeliveryOpen,
		QueuedAt: m.QueuedAt, LastStatusChange: m.LastStatusChange, Action: pipeline.Clip(m.Action(), pipeline.MaxActionInState),
	}
}

// Declaration reads where a message stands, with its newest replies, as its workflow
// needs to see it.
func (s *Store) Declaration(ctx context.Context, number int64) (pipeline.Message, error) {
	m, err := s.Message(ctx, number)
	if err != nil {
		return pipeline.Message{}, err
	}
	d := m.Declaration()
	replies, err := s.Replies(ctx, number)
	if err != nil {
		return pipeline.Message{}, err
	}
	if len(replies) > pipeline.MaxRepliesInState {
		replies = replies[len(replies)-pipeline.MaxRepliesInState:]
	}
	for _, r := range replies {
		d.Replies = append(d.Replies, r.View())
	}
	files, err := s.messageFiles(ctx, m, false, pipeline.MaxFilesInState)
	if err != nil {
		return pipeline.Message{}, err
	}
	for _, f := range files {
		d.Files = append(d.Files, f.File())
	}
	if d.Errors, err = s.latestErrors(ctx, number, pipeline.MaxErrorsInState, pipeline.MaxErrorLenInState); err != nil {
		return pipeline.Message{}, err
	}
	return d, nil
}

// latestErrors are the newest F lines of the communication log about a message,
// newest first, each clipped to clip runes (0: whole). ReadLog's query is served by
// the index communication_log_message (message_number, at).
func (s *Store) latestErrors(ctx context.Context, number int64, limit, clip int) ([]pipeline.ErrorLine, error) {
	lines, err := s.ReadLog(ctx, LogFilter{Message: number, Level: domain.LevelError, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("read the F lines of message %d: %w", number, err)
	}
	out := make([]pipeline.ErrorLine, 0, len(lines))
	for _, l := range lines {
		e := pipeline.ErrorLine{Time: l.At, Step: l.Step, Description: l.Description, Information: l.Information}
		if clip > 0 {
			e.Description, e.Information = pipeline.Clip(e.Description, clip), pipeline.Clip(e.Information, clip)
		}
		out = append(out, e)
	}
	return out, nil
}

// Declarations reads outgoing messages (without replies) in one query, for starting
// or signalling their workflows; numbers that are missing or incoming are left out.
func (s *Store) Declarations(ctx context.Context, numbers []int64) (map[int64]pipeline.Message, error) {
	var rows []Message
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+messageColumns+messageFrom+` WHERE m.number = ANY($1) AND m.direction = $2`,
		pq.Array(numbers), domain.DirectionOut); err != nil {
		return nil, fmt.Errorf("read %d messages: %w", len(numbers), err)
	}
	out := make(map[int64]pipeline.Message, len(rows))
	for _, r := range rows {
		out[r.Number] = r.Declaration()
	}
	return out, nil
}

// Acknowledgement is the authority's acknowledgement of an accepted declaration: the
// statusdetails of Digipoort's final status 500, in which the Belastingdienst confirms
// what it received. It is kept as Digipoort sent it, with the reply it came with.
type Acknowledgement struct {
	Kenmerk string    `json:"kenmerk"`
	Code    string    `json:"code"`
	At      time.Time `json:"time"`
	Text    string    `json:"text"`
	// Response is what the text says when it is the Belastingdienst's Responsemessage
	// (the form seen in Logius' conformance environment); nil for any other text.
	Response *Responsemessage `json:"response,omitempty"`
}

// Responsemessage is the Belastingdienst's answer in the statusdetails of a 500: its
// id for the return, when it received it, and its verdict.
type Responsemessage struct {
	MessageID         string `xml:"Identification>MessageId"         json:"message_id,omitempty"`
	RefersToMessageID string `xml:"Identification>RefersToMessageId" json:"refers_to_message_id,omitempty"`
	AuthorityID       string `xml:"Identification>MessageIdBd"       json:"authority_message_id,omitempty"`
	Received          string `xml:"Identification>DatumTijdOntvangst" json:"received,omitempty"`
	ResponseType      string `xml:"Identification>ResponseType"      json:"response_type,omitempty"`
	Class             string `xml:"Specification>Class"             json:"class,omitempty"`
	Code              string `xml:"Specification>Code"              json:"code,omitempty"`
	Description       string `xml:"Specification>Description"       json:"description,omitempty"`
}

// parseResponsemessage reads a Responsemessage; nil when the text is not one.
func parseResponsemessage(text string) *Responsemessage {
	var r struct {
		XMLName xml.Name
		Responsemessage
	}
	if err := xml.Unmarshal([]byte(strings.TrimSpace(text)), &r); err != nil || r.XMLName.Local != "Responsemessage" {
		return nil
	}
	return &r.Responsemessage
}

// FileInfo is one file of a message or of one of its reply documents, without its
// content.
type FileInfo struct {
	ID int64 `db:"id" json:"id"`
	// Message holds the file: the message itself, or a reply document of it.
	Message  int64  `db:"message_number" json:"message"`
	Name     string `db:"file_name" json:"name"`
	MimeType string `db:"mime_type" json:"mime_type"`
	Size     int64  `db:"size" json:"size"`
	SHA256   string `db:"-" json:"sha256"`
	// Role is "declaration" for an outgoing message's first file (berichtInhoud),
	// "attachment" for its others (berichtBijlagen), "document" for an incoming
	// message's own file (a reply document, an unknown reply) and "reply" for a file of
	// one of the message's reply documents.
	Role string `db:"-" json:"role"`
}

// File is the file as the pipeline's state lists it.
func (f FileInfo) File() pipeline.File {
	return pipeline.File{ID: f.ID, Message: f.Message, Name: f.Name, MimeType: f.MimeType, Size: f.Size, SHA256: f.SHA256, Role: f.Role}
}

// MessageFile is a stored file with its content, exactly as it was queued or received.
type MessageFile struct {
	FileInfo
	Content []byte
}

// MessageFiles returns the files of a message and of every reply document linked to
// it (for an incoming message, its own), with their content, the message's own first.
func (s *Store) MessageFiles(ctx context.Context, number int64) ([]MessageFile, error) {
	m, err := s.Message(ctx, number)
	if err != nil {
		return nil, err
	}
	return s.messageFiles(ctx, m, true, 0)
}

// messageFiles reads the files of m and of its reply documents, the message's own
// first, each in the order stored; limit 0 reads them all.
func (s *Store) messageFiles(ctx context.Context, m Message, content bool, limit int) ([]MessageFile, error) {
	var rows []struct {
		FileInfo
		Sum     []byte `db:"sha256"`
		Content []byte `db:"content"`
	}
	cols := `a.id, a.message_number, a.file_name, a.mime_type, a.size, a.sha256`
	if content {
		cols += `, a.content`
	}
	q := `SELECT ` + cols + ` FROM attachments a
		WHERE a.message_number = $1 OR a.message_number IN (SELECT r.number FROM messages r WHERE r.reply_to = $1)
		ORDER BY a.message_number <> $1, a.message_number, a.id`
	args := []any{m.Number}
	if limit > 0 {
		q += ` LIMIT $2`
		args = append(args, limit)
	}
	if err := s.db.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("read the files of message %d: %w", m.Number, err)
	}
	out := make([]MessageFile, 0, len(rows))
	own := 0
	for _, r := range rows {
		f := MessageFile{FileInfo: r.FileInfo, Content: r.Content}
		f.SHA256 = hex.EncodeToString(r.Sum)
		switch {
		case f.Message != m.Number:
			f.Role = "reply"
		case m.Direction != domain.DirectionOut:
			f.Role = "document"
		case own == 0:
			f.Role = "declaration"
		default:
			f.Role = "attachment"
		}
		if f.Message == m.Number {
			own++
		}
		out = append(out, f)
	}
	return out, nil
}

// Identity is the identiteitBelanghebbende an outgoing message is sent with.
type Identity struct {
	Nummer string `json:"nummer"`
	Type   string `json:"type"`
}

// MessageDetail is one message with everything an operator reads about it: its files,
// what it is sent as, every reply, and the authority's acknowledgement once accepted.
type MessageDetail struct {
	Message
	Identity *Identity `json:"identity,omitempty"`
	// Action is Message.Action: the full text, never clipped.
	Action string `json:"action"`
	// Files are the message's files and its reply documents' (`starter attachment save`
	// writes them).
	Files []FileInfo `json:"attachments"`
	// Errors are the newest F lines of the communication log about the message.
	Errors          []pipeline.ErrorLine `json:"errors"`
	Replies         []StoredReply        `json:"replies"`
	Acknowledgement *Acknowledgement     `json:"acknowledgement,omitempty"`
	// Webhooks counts the status changes pushed to the environment (rule 13).
	Webhooks WebhookCounts `json:"webhooks"`
}

// showErrors is how many F lines `starter show` lists; `starter log --message N` has all.
const showErrors = 10

// ShowMessage reads one message with its files and replies.
func (s *Store) ShowMessage(ctx context.Context, number int64) (MessageDetail, error) {
	m, err := s.Message(ctx, number)
	if err != nil {
		return MessageDetail{}, err
	}
	d := MessageDetail{Message: m, Action: m.Action(), Files: []FileInfo{}}
	if m.Direction == domain.DirectionOut && m.IdentityType != "" {
		d.Identity = &Identity{Nummer: domain.IdentityNumber(m.IdentityType, m.Subject), Type: m.IdentityType}
	}
	files, err := s.messageFiles(ctx, m, false, 0)
	if err != nil {
		return MessageDetail{}, err
	}
	for _, f := range files {
		d.Files = append(d.Files, f.FileInfo)
	}
	if d.Errors, err = s.latestErrors(ctx, number, showErrors, 0); err != nil {
		return MessageDetail{}, err
	}
	if d.Replies, err = s.Replies(ctx, number); err != nil {
		return MessageDetail{}, err
	}
	if d.Replies == nil {
		d.Replies = []StoredReply{}
	}
	d.Acknowledgement = acknowledgement(m, d.Replies)
	if d.Webhooks, err = s.WebhookCountsOf(ctx, number); err != nil {
		return MessageDetail{}, err
	}
	return d, nil
}

// acknowledgement is the statusdetails of the newest applied 500 of the message's
// current attempt; nil while there is none (or it came without details).
func acknowledgement(m Message, replies []StoredReply) *Acknowledgement {
	for i := len(replies) - 1; i >= 0; i-- {
		r := replies[i]
		if r.Applied && r.Attempt == m.Attempt && domain.InterpretStatus(r.Code, r.ErrorCode).Status == domain.StatusAccepted &&
			strings.TrimSpace(r.Details) != "" {
			return &Acknowledgement{Kenmerk: r.Kenmerk, Code: r.Code, At: r.OccurredAt, Text: r.Details, Response: parseResponsemessage(r.Details)}
		}
	}
	return nil
}
