package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"koerier/domain"
)

// Environment is a tenant that queues messages, with its communication profile.
type Environment struct {
	ID          int64  `db:"id"           json:"id"`
	Name        string `db:"name"         json:"name"`
	AutoSend    bool   `db:"auto_send"    json:"auto_send"`
	AutoProcess bool   `db:"auto_process" json:"auto_process"`
	// EmailFrom and SMTPAddress are the columns of the first, address-only e-mail
	// profile; nothing sends with them any more (migration 00008): MailFrom is the
	// profile that counts.
	EmailFrom   string `db:"email_from"   json:"email_from,omitempty"`
	SMTPAddress string `db:"smtp_address" json:"smtp_address,omitempty"`
	// MailFrom is the sender address of the environment's e-mail profile
	// (environment_mail_profiles); empty when it has none.
	MailFrom string `db:"mail_from"    json:"mail_from,omitempty"`
	// HasBank is set when the environment has a bank profile (environment_bank_profiles):
	// it may queue payment orders.
	HasBank   bool       `db:"has_bank"     json:"has_bank"`
	Active    bool       `db:"active"       json:"active"`
	CreatedAt time.Time  `db:"created_at"   json:"created_at"`
	RemovedAt *time.Time `db:"removed_at"   json:"removed_at,omitempty"`
}

// environmentColumns reads an environment with its e-mail profile's sender and whether
// it has a bank profile (scalar subqueries rather than joins, so that callers may lock
// the environment's row FOR SHARE or FOR UPDATE).
const environmentColumns = `id, name, auto_send, auto_process, email_from, smtp_address,
	COALESCE((SELECT p.email_from FROM environment_mail_profiles p WHERE p.environment_id = environments.id), '') AS mail_from,
	EXISTS (SELECT 1 FROM environment_bank_profiles b WHERE b.environment_id = environments.id) AS has_bank,
	active, created_at, removed_at`

// Profile is the environment's communication profile as the rules see it.
func (e Environment) Profile() domain.Profile {
	return domain.Profile{Environment: e.Name, AutoSend: e.AutoSend, AutoProcess: e.AutoProcess, EmailFrom: e.MailFrom,
		HasBank: e.HasBank}
}

var envName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// AddEnvironment creates an environment. A name is never reused, not even after
// removal, so that old log lines keep pointing at the right tenant.
func (s *Store) AddEnvironment(ctx context.Context, e Environment) (Environment, error) {
	if !envName.MatchString(e.Name) {
		return Environment{}, fmt.Errorf(
			"%w: environment name %q: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
			ErrInvalid,
			e.Name,
		)
	}
	if e.Name == ServiceHolder {
		return Environment{}, fmt.Errorf("%w: environment name %s is reserved for the service's holder of resolved messages (rule 9): choose another name",
			ErrInvalid, e.Name)
	}
	if (e.EmailFrom == "") != (e.SMTPAddress == "") {
		return Environment{}, fmt.Errorf("%w: environment %s: an e-mail profile needs both a sender address and an SMTP server", ErrInvalid, e.Name)
	}
	var out Environment
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &out, `
			INSERT INTO environments (name, auto_send, auto_process, email_from, smtp_address)
			VALUES ($1, $2, $3, $4, $5)
			RETURNING id, name, auto_send, auto_process, email_from, smtp_address, active, created_at, removed_at`,
			e.Name, e.AutoSend, e.AutoProcess, e.EmailFrom, e.SMTPAddress)
		if err != nil {
			return err
		}
		return writeLog(ctx, tx, LogEntry{EnvironmentID: &out.ID, Step: domain.StepEnvironment, Level: domain.LevelInfo,
			Description: fmt.Sprintf("environment %s added (auto-send %v, auto-process %v)", out.Name, out.AutoSend, out.AutoProcess)})
	})
	if isUniqueViolation(err, "environments_name_key") {
		existing, gerr := s.Environment(ctx, e.Name)
		if gerr == nil && !existing.Active {
			return Environment{}, fmt.Errorf(
				"%w: environment %s was removed on %s and its name is not reused: choose another name", ErrRefused, e.Name,
				existing.RemovedAt.Format(time.DateOnly),
			)
		}
		return Environment{}, fmt.Errorf("%w: environment %s exists already", ErrRefused, e.Name)
	}
	if err != nil {
		return Environment{}, fmt.Errorf("add environment %s: %w", e.Name, err)
	}
	return out, nil
}

// Environment returns one environment by name, removed or not.
func (s *Store) Environment(ctx context.Context, name string) (Environment, error) {
	var e Environment
	err := s.db.GetContext(
		ctx,
		&e,
		`SELECT `+environmentColumns+` FROM environments WHERE name = $1`,
		name,
	)
	if errors.Is(err, sql.ErrNoRows) {
		return Environment{}, fmt.Errorf("%w: environment %q does not exist (see `starter environments list`)", ErrNotFound, name)
	}
	if err != nil {
		return Environment{}, fmt.Errorf("read environment %s: %w", name, err)
	}
	return e, nil
}

// EnvironmentByID returns one environment by id.
func (s *Store) EnvironmentByID(ctx context.Context, id int64) (Environment, error) {
	var e Environment
	err := s.db.GetContext(
		ctx,
		&e,
		`SELECT `+environmentColumns+` FROM environments WHERE id = $1`,
		id,
	)
	if errors.Is(err, sql.ErrNoRows) {
		return Environment{}, fmt.Errorf("%w: environment id %d", ErrNotFound, id)
	}
	return e, err
}

// Environments lists environments by name; removed ones only when asked.
func (s *Store) Environments(ctx context.Context, includeRemoved bool) ([]Environment, error) {
	var out []Environment
	err := s.db.SelectContext(ctx, &out, `SELECT `+environmentColumns+`
		FROM environments WHERE active OR $1 ORDER BY name`, includeRemoved)
	if err != nil {
		return nil, fmt.Errorf("list environments: %w", err)
	}
	return out, nil
}

// RemoveEnvironment marks an environment removed. Its messages that were not handled
// to the end need an operator (rule 9 in docs/rules.md); their numbers are returned.
func (s *Store) RemoveEnvironment(ctx context.Context, name string) ([]int64, error) {
	var affected []int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var id int64
		var active bool
		err := tx.QueryRowxContext(ctx, `SELECT id, active FROM environments WHERE name = $1 FOR UPDATE`, name).Scan(&id, &active)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: environment %q does not exist", ErrNotFound, name)
		}
		if err != nil {
			return err
		}
		if !active {
			return fmt.Errorf("%w: environment %s is already removed", ErrRefused, name)
		}
		if name == ServiceHolder {
			return fmt.Errorf("%w: %s is the service's own holder of resolved messages (rule 9); it cannot be removed", ErrRefused, name)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE environments SET active = false, removed_at = now() WHERE id = $1`, id); err != nil {
			return err
		}
		var msgs []struct {
			Number    int64          `db:"number"`
			Status    domain.Status  `db:"status"`
			EnvStatus domain.Status  `db:"env_status"`
			Reported  *domain.Status `db:"reported_status"`
		}
		if err := tx.SelectContext(ctx, &msgs,
			`SELECT number, status, env_status, reported_status FROM messages WHERE environment_id = $1 AND direction = $2 FOR UPDATE`,
			id, domain.DirectionOut); err != nil {
			return err
		}
		for _, m := range msgs {
			if !domain.HandledCorrectly(m.Status, m.EnvStatus, m.Reported) {
				affected = append(affected, m.Number)
			}
		}
		reasons := make([]string, len(affected))
		for i, n := range affected {
			reasons[i] = environmentGoneReason(name, n)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages m SET needs_action = true, needs_action_reason = u.reason
			FROM unnest($1::bigint[], $2::text[]) AS u(number, reason) WHERE m.number = u.number`,
			pq.Array(affected), pq.Array(reasons)); err != nil {
			return err
		}
		return writeLog(ctx, tx, LogEntry{EnvironmentID: &id, Step: domain.StepEnvironment, Level: domain.LevelInfo,
			Description: fmt.Sprintf("environment %s removed; %d message(s) need an operator", name, len(affected))})
	})
	if err != nil {
		return nil, fmt.Errorf("remove environment %s: %w", name, err)
	}
	return affected, nil
}

// ServiceHolder is the environment that holds the messages an operator let the service
// resolve (rule 9), created when first needed. Its name is reserved (AddEnvironment
// refuses it) and it cannot be removed; it has no API tokens or webhook endpoint unless
// an operator gives it some, so no environment is told about what it holds.
const ServiceHolder = "koerier-service"

// environmentGoneReason is the needs-action reason of a message whose environment is gone.
func environmentGoneReason(env string, number int64) string {
	return fmt.Sprintf("environment %s was removed or is no longer active: message %d is neither sent nor processed until an operator "+
		"decides: assign another environment (`starter assign %d --env E`) or let the service hold it (`starter assign %d --resolve`)", env, number, number, number)
}

// notHeldByGoneEnvironment is the SQL condition (messages m, environments e) that leaves
// out a message marked needs-action because its environment is gone: the reason starts
// as environmentGoneReason's does.
const notHeldByGoneEnvironment = `(e.active OR NOT m.needs_action OR
	NOT starts_with(m.needs_action_reason, 'environment ' || e.name || ' was removed or is no longer active: message ' || m.number || ' '))`

// environmentGone reports whether the message's environment is gone (rule 9): its row is
// marked inactive (active false, removed_at set: a check constraint ties the two), by
// `environments remove` or by any other hand. The row itself cannot be deleted while
// messages point at it (foreign key), so inactive is the one way an environment disappears.
func environmentGone(m Message) (string, bool) {
	if m.Direction != domain.DirectionOut || (m.EnvironmentActive != nil && *m.EnvironmentActive) {
		return "", false
	}
	return environmentGoneReason(deref(m.Environment), m.Number), true
}

// markEnvironmentGone makes a message whose environment is gone need action, with an F
// line once: the service finds this by itself, also where the environment was
// deactivated without `environments remove`.
func markEnvironmentGone(ctx context.Context, tx *sqlx.Tx, m Message, reason string) error {
	if m.NeedsAction && m.NeedsActionReason == reason {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET needs_action = true, needs_action_reason = $2 WHERE number = $1`, m.Number, reason); err != nil {
		return err
	}
	n := m.Number
	return writeLog(ctx, tx, LogEntry{MessageNumber: &n, EnvironmentID: m.EnvironmentID, Step: domain.StepEnvironment, Level: domain.LevelError,
		Description: reason, DedupeKey: fmt.Sprintf("environment-gone/%d/%d", m.Number, deref(m.EnvironmentID))})
}

// AssignEnvironment moves a message whose environment no longer exists to another
// environment (rule 9), or with resolve lets the service hold it: the message moves to
// ServiceHolder (created when first needed: no auto-send, auto-process), where it goes on
// as any message — sent with the next send/receive if due, processed at once — and no
// environment is told; its outcome is in the log and `starter show`. Its client reference
// becomes "<old environment>/<reference>", as references are unique per environment.
// It is refused on a message that was handled correctly, and on one whose environment
// is still there.
func (s *Store) AssignEnvironment(ctx context.Context, number int64, env string, resolve bool, who string) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		m, err := lockMessage(ctx, tx, number)
		if err != nil {
			return err
		}
		want := env
		if resolve {
			want = ServiceHolder
		}
		switch {
		case m.Direction != domain.DirectionOut:
			return fmt.Errorf("%w: message %d is an incoming message", ErrRefused, number)
		case m.EnvironmentActive != nil && *m.EnvironmentActive && deref(m.Environment) == want && !m.NeedsAction:
			// A retry after the assignment committed (activity retry, the command run again):
			// done already, nothing to write.
			return nil
		case m.Handled():
			return fmt.Errorf(
				"%w: message %d was handled correctly (%s, reported to its environment): it cannot be assigned elsewhere", ErrRefused, number,
				m.Status,
			)
		case m.EnvironmentActive != nil && *m.EnvironmentActive:
			return fmt.Errorf("%w: message %d belongs to environment %s, which still exists", ErrRefused, number, deref(m.Environment))
		}
		if who == "" {
			who = "an operator"
		}
		if resolve {
			env = ServiceHolder
			if _, err := tx.ExecContext(ctx, `INSERT INTO environments (name, auto_send, auto_process) VALUES ($1, false, true)
				ON CONFLICT (name) DO NOTHING`, ServiceHolder); err != nil {
				return err
			}
		}
		var target struct {
			ID     int64 `db:"id"`
			Active bool  `db:"active"`
		}
		if err := tx.GetContext(ctx, &target, `SELECT id, active FROM environments WHERE name = $1`, env); err != nil {
			if isNoRows(err) {
				return fmt.Errorf("%w: environment %q does not exist", ErrNotFound, env)
			}
			return err
		}
		if !target.Active {
			return fmt.Errorf("%w: environment %s was removed too", ErrRefused, env)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET environment_id = $2, needs_action = false, needs_action_reason = '',
			client_reference = $3 || '/' || client_reference WHERE number = $1`, number, target.ID, deref(m.Environment)); err != nil {
			return err
		}
		what := fmt.Sprintf("message %d moved by %s from removed environment %s to %s", number, who, deref(m.Environment), env)
		if resolve {
			what = fmt.Sprintf("message %d of removed environment %s resolved by %s: the service holds it (environment %s) and no environment is told; "+
				"it is sent with the next send/receive if due and processed at once, its outcome stays in this log and `starter show %d`",
				number, deref(m.Environment), who, ServiceHolder, number)
		}
		return writeLog(ctx, tx, LogEntry{EnvironmentID: &target.ID, MessageNumber: &number, Step: domain.StepEnvironment, Level: domain.LevelInfo,
			Description: what})
	})
	if err != nil {
		return fmt.Errorf("assign message %d: %w", number, err)
	}
	return nil
}

// EnvironmentSettings are what `starter environments set` changes; nil leaves a setting
// as it is.
type EnvironmentSettings struct {
	AutoSend    *bool
	AutoProcess *bool
}

// SetEnvironment changes an environment's auto-send and auto-process, with an I line
// that says what changed and who changed it. It returns the environment as it is now,
// and the outgoing messages whose workflows may be running with older settings (every
// one not yet accepted and processed; also when nothing changed now, so that running
// the command again tells workflows a failed run did not reach): a declaration workflow reads the settings when it loads its message, so
// those must be told to load again.
func (s *Store) SetEnvironment(ctx context.Context, name string, set EnvironmentSettings, who string) (EnvironmentChange, error) {
	if set.AutoSend == nil && set.AutoProcess == nil {
		return EnvironmentChange{}, fmt.Errorf("%w: environment %s: say what to change (--auto-send, --auto-process)", ErrInvalid, name)
	}
	if who == "" {
		who = "an operator"
	}
	var res EnvironmentChange
	out := &res.Environment
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, out, `SELECT `+environmentColumns+`
			FROM environments WHERE name = $1 FOR UPDATE`, name)
		if isNoRows(err) {
			return fmt.Errorf("%w: environment %q does not exist (`starter environments list --all` lists them)", ErrNotFound, name)
		}
		if err != nil {
			return err
		}
		if !out.Active {
			return fmt.Errorf("%w: environment %s was removed on %s: its settings no longer apply", ErrRefused, name,
				out.RemovedAt.Format(time.DateOnly))
		}
		changes := &res.Changes
		if set.AutoSend != nil && *set.AutoSend != out.AutoSend {
			*changes = append(*changes, fmt.Sprintf("auto-send %v → %v", out.AutoSend, *set.AutoSend))
			out.AutoSend = *set.AutoSend
		}
		if set.AutoProcess != nil && *set.AutoProcess != out.AutoProcess {
			*changes = append(*changes, fmt.Sprintf("auto-process %v → %v", out.AutoProcess, *set.AutoProcess))
			out.AutoProcess = *set.AutoProcess
		}
		if err := tx.SelectContext(ctx, &res.Messages, `SELECT number FROM messages
			WHERE environment_id = $1 AND direction = $2
			  AND NOT (status = $3 AND env_status = $3)
			ORDER BY number`, out.ID, domain.DirectionOut, domain.StatusAccepted); err != nil {
			return err
		}
		if len(res.Changes) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE environments SET auto_send = $2, auto_process = $3 WHERE id = $1`,
			out.ID, out.AutoSend, out.AutoProcess); err != nil {
			return err
		}
		return writeLog(ctx, tx, LogEntry{EnvironmentID: &out.ID, Step: domain.StepEnvironment, Level: domain.LevelInfo,
			Description: fmt.Sprintf("environment %s changed by %s: %s", out.Name, who, strings.Join(res.Changes, ", "))})
	})
	if err != nil {
		return EnvironmentChange{}, fmt.Errorf("set environment %s: %w", name, err)
	}
	return res, nil
}

// EnvironmentChange is what SetEnvironment did.
type EnvironmentChange struct {
	Environment Environment `json:"environment"`
	// Changes says what changed ("auto-send false → true"); none when the settings were
	// as asked already.
	Changes []string `json:"changes"`
	// Messages are the outgoing messages whose workflows may hold older settings.
	Messages []int64 `json:"messages"`
}
