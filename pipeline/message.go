package pipeline

import (
	"fmt"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"

	"koerier/domain"
)

// Message is an outgoing message as the pipeline sees it: what its workflow starts
// from (LoadMessage), what a delivery returns, what every start and signal shows in
// the Web UI, and what the `state` query reports. Postgres is its record of truth; the
// store fills it (store.Message.Declaration, and store.Queued.Declaration for a
// message just queued).
//
// Its JSON keys are the Go field names because recorded histories carry it that way:
// don't add json tags or rename a field.
type Message struct {
	Number      int64
	Direction   domain.Direction
	Environment string
	// EnvironmentActive is false once the environment was removed: its messages are
	// neither sent nor processed on their own any more (rule 9 in docs/rules.md).
	EnvironmentActive bool
	AutoSend          bool
	AutoProcess       bool
	Type              string
	// Channel is how the message leaves Koerier (domain.Channel): Digipoort, or e-mail
	// for an e-invoice.
	Channel string `json:",omitempty"`
	Subject string
	Period  string
	// Declaration is domain.Declaration.Key: the same for every version.
	Declaration   string
	Version       int
	LatestVersion int
	// Attempt counts deliveries: a restore starts a new one.
	Attempt int
	Status  domain.Status
	// EnvStatus is the status the environment sees (as of the last process).
	EnvStatus domain.Status
	// Reported is set when the environment was told the current (final) status.
	Reported          bool
	DoNotSend         bool
	NeedsAction       bool
	NeedsActionReason string
	Kenmerk           string
	// DeliveryOpen is set while the current attempt's delivery has no known outcome:
	// it is looked up before anything else happens to the message, do-not-send or not.
	DeliveryOpen bool
	// Replies are the newest MaxRepliesInState replies; Postgres keeps them all.
	Replies []Reply
	// The properties below are for people (the `state` query, the Web UI's details),
	// never for decisions; each is bounded, as every payload in a history must be.
	QueuedAt         time.Time
	LastStatusChange time.Time
	// Action is why the message needs an operator, or else the error of its current,
	// unfinished delivery, clipped to MaxActionInState (`starter show` has it whole).
	Action string
	// Files are the message's files and those of its reply documents, at most
	// MaxFilesInState, without their content (`starter attachment save` writes them).
	Files []File
	// Errors are its newest F lines of the communication log, newest first, at most
	// MaxErrorsInState, each clipped to MaxErrorLenInState.
	Errors []ErrorLine
}

// Bounds of what a Message carries through Temporal for people to read.
const (
	MaxActionInState   = 2000
	MaxFilesInState    = 20
	MaxErrorsInState   = 5
	MaxErrorLenInState = 500
)

// File is one stored file as the `state` query lists it.
type File struct {
	ID int64 `json:"id"`
	// Message holds the file: the message itself, or one of its reply documents.
	Message  int64  `json:"message"`
	Name     string `json:"name"`
	MimeType string `json:"mime_type"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	// Role: "declaration" (an outgoing message's first file, berichtInhoud),
	// "attachment" (its further files, berichtBijlagen), "document" (an incoming
	// message's own file) or "reply" (a file of a reply document).
	Role string `json:"role"`
}

// ErrorLine is an F line of the communication log about the message.
type ErrorLine struct {
	Time        time.Time   `json:"time"`
	Step        domain.Step `json:"step"`
	Description string      `json:"description"`
	Information string      `json:"information,omitempty"`
}

// Clip shortens s to at most n runes, marking the cut, so that a bounded field says
// that it was bounded.
func Clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return "…"
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// MaxRepliesInState bounds the replies a message carries through Temporal (payloads
// and query answers are limited); Postgres keeps them all.
const MaxRepliesInState = 50

// Reply is one Digipoort status as a declaration's history shows it.
type Reply struct {
	EventID     int64         `json:"event_id"`
	Kenmerk     string        `json:"kenmerk"`
	Code        string        `json:"code"`
	Status      domain.Status `json:"status"`
	Time        time.Time     `json:"time"`
	Description string        `json:"description"`
	ErrorCode   string        `json:"error_code,omitempty"`
	Applied     bool          `json:"applied"`
}

// Summary is the one line the Web UI shows for a declaration.
func (m Message) Summary() string {
	return fmt.Sprintf("%s %s %s v%d · %s", m.Type, m.Subject, m.Period, m.Version, m.Environment)
}

// SearchAttributes are the attributes a declaration workflow starts with.
func (m Message) SearchAttributes() temporal.SearchAttributes {
	return temporal.NewSearchAttributes(m.AttributeUpdates()...)
}

// AttributeUpdates are the search attributes of a declaration, as an upsert.
func (m Message) AttributeUpdates() []temporal.SearchAttributeUpdate {
	return []temporal.SearchAttributeUpdate{
		SAEnvironment.ValueSet(m.Environment),
		SAMessageType.ValueSet(m.Type),
		SADeclaration.ValueSet(m.Declaration),
		SAVersion.ValueSet(int64(m.Version)),
		SAStatus.ValueSet(string(m.Status)),
		SAKenmerk.ValueSet(m.Kenmerk),
	}
}

// AttributesKey is a comparable summary of the message's search attributes, so that a
// workflow upserts them only when they change (each upsert is a history event and a
// visibility write).
func (m Message) AttributesKey() string {
	return fmt.Sprint(m.Environment, "|", m.Type, "|", m.Declaration, "|", m.Version, "|", m.Status, "|", m.Kenmerk)
}

// CurrentAttributesKey is AttributesKey of the attributes a workflow has now (those it
// was started with, or last upserted).
func CurrentAttributesKey(sa temporal.SearchAttributes) string {
	var m Message
	m.Environment, _ = sa.GetKeyword(SAEnvironment)
	m.Type, _ = sa.GetKeyword(SAMessageType)
	m.Declaration, _ = sa.GetKeyword(SADeclaration)
	version, _ := sa.GetInt64(SAVersion)
	m.Version = int(version)
	status, _ := sa.GetKeyword(SAStatus)
	m.Status = domain.Status(status)
	m.Kenmerk, _ = sa.GetKeyword(SAKenmerk)
	return m.AttributesKey()
}

// Stages of a declaration.
const (
	StageQueued            = "queued"
	StageSending           = "sending"
	StageAwaitingReplies   = "awaiting replies"
	StageProcessing        = "waiting for process"
	StageWaitingForRestore = "waiting for restore"
	// StageReporting: done but for the webhook events its receiver has not taken yet.
	StageReporting = "reporting"
	StageDone      = "done"
)

// State is what the `state` query returns, for people: the Web UI shows it and
// `starter state` prints it. Its JSON keys are a contract of their own (snake_case,
// stable), unlike Message's, which recorded histories fix.
type State struct {
	Number            int64         `json:"number"`
	Stage             string        `json:"stage"`
	Status            domain.Status `json:"status"`
	EnvStatus         domain.Status `json:"environment_status"`
	Environment       string        `json:"environment"`
	Type              string        `json:"type"`
	Subject           string        `json:"subject"`
	Period            string        `json:"period"`
	Declaration       string        `json:"declaration"`
	Version           int           `json:"version"`
	LatestVersion     int           `json:"latest_version"`
	Attempt           int           `json:"attempt"`
	Kenmerk           string        `json:"kenmerk"`
	Replies           []Reply       `json:"replies"`
	DoNotSend         bool          `json:"do_not_send"`
	NeedsAction       bool          `json:"needs_action"`
	NeedsActionReason string        `json:"needs_action_reason,omitempty"`
	LastMessage       string        `json:"last_message,omitempty"`
	QueuedAt          time.Time     `json:"queued_at"`
	LastStatusChange  time.Time     `json:"last_status_change"`
	// Action: why the message needs an operator, or its delivery's error (bounded).
	Action string `json:"action,omitempty"`
	// Attachments: the files of the message and of its reply documents (bounded).
	Attachments []File `json:"attachments"`
	// Errors: the newest F lines of the communication log about it (bounded).
	Errors []ErrorLine `json:"errors"`
}

// State is the message as the `state` query shows it, at a stage of its workflow.
func (m Message) State(stage, last string) State {
	return State{
		Number: m.Number, Stage: stage, Status: m.Status, EnvStatus: m.EnvStatus, Environment: m.Environment, Type: m.Type,
		Subject: m.Subject, Period: m.Period, Declaration: m.Declaration, Version: m.Version, LatestVersion: m.LatestVersion,
		Attempt: m.Attempt, Kenmerk: m.Kenmerk, Replies: append([]Reply{}, m.Replies...), DoNotSend: m.DoNotSend,
		NeedsAction: m.NeedsAction, NeedsActionReason: m.NeedsActionReason, LastMessage: last, QueuedAt: m.QueuedAt,
		LastStatusChange: m.LastStatusChange, Action: m.Action, Attachments: append([]File{}, m.Files...),
		Errors: append([]ErrorLine{}, m.Errors...),
	}
}
