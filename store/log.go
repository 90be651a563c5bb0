package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"koerier/domain"
)

// LogEntry is one line of the communication log.
type LogEntry struct {
	ID            int64        `db:"id" json:"id"`
	At            time.Time    `db:"at" json:"time"`
	EnvironmentID *int64       `db:"environment_id" json:"-"`
	Environment   *string      `db:"environment" json:"environment"`
	MessageNumber *int64       `db:"message_number" json:"message"`
	Step          domain.Step  `db:"step" json:"step"`
	Level         domain.Level `db:"level" json:"level"`
	Description   string       `db:"description" json:"description"`
	Information   string       `db:"information" json:"information,omitempty"`
	Memo          string       `db:"memo" json:"memo,omitempty"`
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
	return writeLogs(ctx, db, []LogEntry{e})
}

// writeLogs appends many lines in one statement.
func writeLogs(ctx context.Context, db sqlx.ExecerContext, entries []LogEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var envs, msgs []*int64
	var steps, levels, descs, infos, memos []string
	var keys []*string
	for _, e := range entries {
		if !e.Level.Valid() || e.Step == "" || e.Description == "" {
			return fmt.Errorf("%w: log line %q needs level I or F, a step and a description", ErrInvalid, e.Description)
		}
		envs, msgs = append(envs, e.EnvironmentID), append(msgs, e.MessageNumber)
		steps, levels, descs = append(steps, string(e.Step)), append(levels, string(e.Level)), append(descs, e.Description)
		infos, memos = append(infos, e.Information), append(memos, e.Memo)
		var key *string
		if e.DedupeKey != "" {
			k := e.DedupeKey
			key = &k
		}
		keys = append(keys, key)
	}
	_, err := db.ExecContext(ctx, `
		INSERT INTO communication_log (environment_id, message_number, step, level, description, information, memo, dedupe_key)
		SELECT COALESCE(u.env, (SELECT environment_id FROM messages WHERE number = u.msg)), u.msg, u.step, u.level, u.descr, u.info, u.memo, u.key
		FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
		     AS u(env, msg, step, level, descr, info, memo, key)
		ON CONFLICT (dedupe_key) DO NOTHING`,
		pq.Array(envs), pq.Array(msgs), pq.Array(steps), pq.Array(levels), pq.Array(descs), pq.Array(infos), pq.Array(memos), pq.Array(keys))
	return err
}

// LogFilter selects log lines; zero fields don't filter.
type LogFilter struct {
	Level       domain.Level
	Environment string
	Step        domain.Step
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
		lvl := domain.Level(strings.ToUpper(string(f.Level)))
		if !lvl.Valid() {
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
