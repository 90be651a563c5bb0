package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Levels of the communication log.
const (
	LevelInfo  = "I"
	LevelError = "F" // fout
)

// Steps name where in the pipeline a log line was written.
const (
	StepQueue       = "queue"
	StepSend        = "send"
	StepReceive     = "receive"
	StepProcess     = "process"
	StepReport      = "report"
	StepRestore     = "restore"
	StepCleanup     = "cleanup"
	StepEnvironment = "environment"
	StepSendReceive = "send-receive"
	StepWorkflow    = "workflow"
)

// LogEntry is one line of the communication log.
type LogEntry struct {
	ID            int64     `db:"id" json:"id"`
	At            time.Time `db:"at" json:"time"`
	EnvironmentID *int64    `db:"environment_id" json:"-"`
	Environment   *string   `db:"environment" json:"environment"`
	MessageNumber *int64    `db:"message_number" json:"message"`
	Step          string    `db:"step" json:"step"`
	Level         string    `db:"level" json:"level"`
	Description   string    `db:"description" json:"description"`
	Information   string    `db:"information" json:"information,omitempty"`
	Memo          string    `db:"memo" json:"memo,omitempty"`
	// DedupeKey makes a retried write a no-op; empty means always write.
	DedupeKey string `db:"-" json:"-"`
}

// WriteLog appends a line to the communication log.
func (s *Store) WriteLog(ctx context.Context, e LogEntry) error {
	if err := writeLog(ctx, s.db, e); err != nil {
		return fmt.Errorf("write log line %q: %w", e.Description, err)
	}
	return nil
}

func writeLog(ctx context.Context, db sqlx.ExecerContext, e LogEntry) error {
	if e.Level != LevelInfo && e.Level != LevelError {
		return fmt.Errorf("%w: log level %q: use I or F", ErrInvalid, e.Level)
	}
	if e.Step == "" || e.Description == "" {
		return fmt.Errorf("%w: a log line needs a step and a description", ErrInvalid)
	}
	var key any
	if e.DedupeKey != "" {
		key = e.DedupeKey
	}
	_, err := db.ExecContext(ctx, `
		INSERT INTO communication_log (environment_id, message_number, step, level, description, information, memo, dedupe_key)
		VALUES (COALESCE($1, (SELECT environment_id FROM messages WHERE number = $2)), $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (dedupe_key) DO NOTHING`,
		e.EnvironmentID, e.MessageNumber, e.Step, e.Level, e.Description, e.Information, e.Memo, key)
	return err
}

// LogFilter selects log lines; zero fields don't filter.
type LogFilter struct {
	Level       string
	Environment string
	Step        string
	Message     int64
	Since       time.Time
	Until       time.Time
	// Limit caps the lines returned, newest first; 0 means 1000.
	Limit int
}

// ReadLog returns log lines, newest first.
func (s *Store) ReadLog(ctx context.Context, f LogFilter) ([]LogEntry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Level != "" {
		lvl := strings.ToUpper(f.Level)
		if lvl != LevelInfo && lvl != LevelError {
			return nil, fmt.Errorf("%w: log level %q: use I or F", ErrInvalid, f.Level)
		}
		add("l.level = $%d", lvl)
	}
	if f.Environment != "" {
		env, err := s.Environment(ctx, f.Environment)
		if err != nil {
			return nil, err
		}
		add("l.environment_id = $%d", env.ID)
	}
	if f.Step != "" {
		add("l.step = $%d", f.Step)
	}
	if f.Message != 0 {
		add("l.message_number = $%d", f.Message)
	}
	if !f.Since.IsZero() {
		add("l.at >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		add("l.at < $%d", f.Until)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q := `SELECT l.id, l.at, l.environment_id, e.name AS environment, l.message_number, l.step, l.level, l.description, l.information, l.memo
		FROM communication_log l LEFT JOIN environments e ON e.id = l.environment_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY l.at DESC, l.id DESC LIMIT $%d", len(args))
	var out []LogEntry
	if err := s.db.SelectContext(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return out, nil
}
