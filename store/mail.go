package store

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"koerier/domain"
	"koerier/internal/secrets"
)

// MailServer is one server of an e-mail profile: SMTP to send, IMAP to read.
type MailServer struct {
	Host string
	Port int
	// Security is "tls" (implicit TLS), "starttls" or "none"; none only for a server
	// on this machine.
	Security string
	User     string
	// Password is never logged or printed. Empty in SetMailProfile keeps the stored one.
	Password string
}

// String never shows the password: a profile printed by mistake must not leak it.
func (m MailServer) String() string {
	return fmt.Sprintf("%s@%s:%d %s (password set: %v)", m.User, m.Host, m.Port, m.Security, m.Password != "")
}

// GoString is String, for %#v.
func (m MailServer) GoString() string { return m.String() }

// MailProfile is an environment's e-mail profile (rule 2 in docs/rules.md): e-invoices
// go out from From through SMTP and come in through the IMAP mailbox. A profile without
// IMAP host sends but does not receive.
type MailProfile struct {
	From       string
	SMTP, IMAP MailServer
	// Folder is read for incoming invoices; Processed is where read mail is moved
	// (never deleted); Sent is where a copy of what was sent is looked up.
	Folder, Processed, Sent string
	// Local marks a profile on the local development mail server.
	Local bool
}

// HasMailbox reports whether the profile receives.
func (p MailProfile) HasMailbox() bool { return p.IMAP.Host != "" }

// Mail security settings.
const (
	SecurityTLS      = "tls"
	SecurityStartTLS = "starttls"
	SecurityNone     = "none"
)

// Folders a profile gets when none is named.
const (
	DefaultMailFolder      = "INBOX"
	DefaultProcessedFolder = "Koerier/Verwerkt"
	DefaultSentFolder      = "Sent"
)

// mailProfileRow is a profile as stored, passwords sealed.
type mailProfileRow struct {
	EnvironmentID int64  `db:"environment_id"`
	From          string `db:"email_from"`
	SMTPHost      string `db:"smtp_host"`
	SMTPPort      int    `db:"smtp_port"`
	SMTPSecurity  string `db:"smtp_security"`
	SMTPUser      string `db:"smtp_user"`
	SMTPPassword  []byte `db:"smtp_password"`
	IMAPHost      string `db:"imap_host"`
	IMAPPort      int    `db:"imap_port"`
	IMAPSecurity  string `db:"imap_security"`
	IMAPUser      string `db:"imap_user"`
	IMAPPassword  []byte `db:"imap_password"`
	Folder        string `db:"folder"`
	Processed     string `db:"processed_folder"`
	Sent          string `db:"sent_folder"`
	Local         bool   `db:"local"`
}

const mailProfileColumns = `environment_id, email_from, smtp_host, smtp_port, smtp_security, smtp_user, smtp_password,
	imap_host, imap_port, imap_security, imap_user, imap_password, folder, processed_folder, sent_folder, local`

// SetMailProfile gives an environment its e-mail profile, or changes it. It checks the
// profile (a plain sender address, SMTP host, port and security; security none only for
// a server on this machine; IMAP all or nothing), seals the passwords with the store's
// key, and writes an I line that names what changed and who changed it — a password
// only as "changed". An empty password keeps the stored one while the server's user
// stays the same; a server without user has no password.
func (s *Store) SetMailProfile(ctx context.Context, env string, p MailProfile, who string) error {
	p = p.withDefaults()
	if err := p.validate(env); err != nil {
		return err
	}
	if who == "" {
		who = "an operator"
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		id, err := lockActiveEnvironment(ctx, tx, env, "its e-mail profile can no longer be set")
		if err != nil {
			return err
		}
		var old *mailProfileRow
		var stored mailProfileRow
		err = tx.GetContext(ctx, &stored, `SELECT `+mailProfileColumns+` FROM environment_mail_profiles WHERE environment_id = $1`, id)
		switch {
		case err == nil:
			old = &stored
		case !isNoRows(err):
			return err
		}
		row, err := s.sealProfile(env, id, p, old)
		if err != nil {
			return err
		}
		changes := profileChanges(old, row)
		if len(changes) == 0 {
			return nil
		}
		if _, err := tx.NamedExecContext(ctx, `
			INSERT INTO environment_mail_profiles (`+mailProfileColumns+`, updated_at)
			VALUES (:environment_id, :email_from, :smtp_host, :smtp_port, :smtp_security, :smtp_user, :smtp_password,
				:imap_host, :imap_port, :imap_security, :imap_user, :imap_password, :folder, :processed_folder, :sent_folder, :local, now())
			ON CONFLICT (environment_id) DO UPDATE SET email_from = EXCLUDED.email_from, smtp_host = EXCLUDED.smtp_host,
				smtp_port = EXCLUDED.smtp_port, smtp_security = EXCLUDED.smtp_security, smtp_user = EXCLUDED.smtp_user,
				smtp_password = EXCLUDED.smtp_password, imap_host = EXCLUDED.imap_host, imap_port = EXCLUDED.imap_port,
				imap_security = EXCLUDED.imap_security, imap_user = EXCLUDED.imap_user, imap_password = EXCLUDED.imap_password,
				folder = EXCLUDED.folder, processed_folder = EXCLUDED.processed_folder, sent_folder = EXCLUDED.sent_folder,
				local = EXCLUDED.local, updated_at = now()`, row); err != nil {
			return err
		}
		what := "set"
		if old != nil {
			what = "changed"
		}
		return writeLog(ctx, tx, LogEntry{EnvironmentID: &id, Step: domain.StepEnvironment, Level: domain.LevelInfo,
			Description: fmt.Sprintf("e-mail profile of environment %s %s by %s: %s", env, what, who, strings.Join(changes, ", "))})
	})
	if err != nil {
		return fmt.Errorf("set the e-mail profile of environment %s: %w", env, err)
	}
	return nil
}

// ClearMailProfile removes an environment's e-mail profile: it no longer queues,
// sends or receives e-invoices. Clearing a profile that is not there does nothing.
func (s *Store) ClearMailProfile(ctx context.Context, env, who string) error {
	return s.clearProfile(ctx, "environment_mail_profiles", "e-mail profile", env, who, "it no longer sends or receives e-invoices")
}

// clearProfile deletes environment env's row from table, one of the per-environment
// profile tables (what names it: "e-mail profile"), and writes an I line saying who
// removed it and what follows (after). A profile that is not there is no change.
func (s *Store) clearProfile(ctx context.Context, table, what, env, who, after string) error {
	if who == "" {
		who = "an operator"
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		id, err := lockActiveEnvironment(ctx, tx, env, "its "+what+" can no longer be changed")
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE environment_id = $1`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return writeLog(ctx, tx, LogEntry{EnvironmentID: &id, Step: domain.StepEnvironment, Level: domain.LevelInfo,
			Description: fmt.Sprintf("%s of environment %s removed by %s: %s", what, env, who, after)})
	})
	if err != nil {
		return fmt.Errorf("clear the %s of environment %s: %w", what, env, err)
	}
	return nil
}

// MailProfile returns an environment's e-mail profile with its passwords opened;
// ErrNotFound when it has none.
func (s *Store) MailProfile(ctx context.Context, envID int64) (MailProfile, error) {
	var row struct {
		mailProfileRow
		Name string `db:"name"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT e.name, `+prefixed("p.", mailProfileColumns)+`
		FROM environment_mail_profiles p JOIN environments e ON e.id = p.environment_id WHERE p.environment_id = $1`, envID)
	if isNoRows(err) {
		return MailProfile{}, fmt.Errorf("%w: environment %d has no e-mail profile: give it one with `starter environments set NAME --email-from … --smtp …` "+
			"(or --local-mail)", ErrNotFound, envID)
	}
	if err != nil {
		return MailProfile{}, fmt.Errorf("read the e-mail profile of environment %d: %w", envID, err)
	}
	r := row.mailProfileRow
	p := MailProfile{From: r.From, Folder: r.Folder, Processed: r.Processed, Sent: r.Sent, Local: r.Local,
		SMTP: MailServer{Host: r.SMTPHost, Port: r.SMTPPort, Security: r.SMTPSecurity, User: r.SMTPUser},
		IMAP: MailServer{Host: r.IMAPHost, Port: r.IMAPPort, Security: r.IMAPSecurity, User: r.IMAPUser}}
	if p.SMTP.Password, err = s.openSecret(row.Name, "SMTP", r.SMTPPassword); err != nil {
		return MailProfile{}, err
	}
	if p.IMAP.Password, err = s.openSecret(row.Name, "IMAP", r.IMAPPassword); err != nil {
		return MailProfile{}, err
	}
	return p, nil
}

// MailEnvironments lists the active environments with an e-mail profile, by name: an
// e-mail send/receive runs for each (it sends their due e-invoices, and reads the mailbox
// where the profile has one).
func (s *Store) MailEnvironments(ctx context.Context) ([]Environment, error) {
	out := []Environment{}
	if err := s.db.SelectContext(ctx, &out, `SELECT `+environmentColumns+` FROM environments
		WHERE active AND EXISTS (SELECT 1 FROM environment_mail_profiles p WHERE p.environment_id = environments.id)
		ORDER BY name`); err != nil {
		return nil, fmt.Errorf("list environments with an e-mail profile: %w", err)
	}
	return out, nil
}

// lockActiveEnvironment locks an environment's row for a change of its settings and
// refuses a removed one, saying why with refusal.
func lockActiveEnvironment(ctx context.Context, tx *sqlx.Tx, env, refusal string) (int64, error) {
	var e struct {
		ID        int64      `db:"id"`
		Active    bool       `db:"active"`
		RemovedAt *time.Time `db:"removed_at"`
	}
	err := tx.GetContext(ctx, &e, `SELECT id, active, removed_at FROM environments WHERE name = $1 FOR UPDATE`, env)
	if isNoRows(err) {
		return 0, fmt.Errorf("%w: environment %q does not exist (`starter environments list` lists them)", ErrNotFound, env)
	}
	if err != nil {
		return 0, err
	}
	if !e.Active {
		return 0, fmt.Errorf("%w: environment %s was removed on %s: %s", ErrRefused, env, e.RemovedAt.Format(time.DateOnly), refusal)
	}
	return e.ID, nil
}

func (p MailProfile) withDefaults() MailProfile {
	p.From = strings.TrimSpace(p.From)
	for _, srv := range []*MailServer{&p.SMTP, &p.IMAP} {
		srv.Host = strings.ToLower(strings.TrimSpace(srv.Host))
		srv.Security = strings.ToLower(strings.TrimSpace(srv.Security))
		srv.User = strings.TrimSpace(srv.User)
	}
	if p.Folder == "" {
		p.Folder = DefaultMailFolder
	}
	if p.Processed == "" {
		p.Processed = DefaultProcessedFolder
	}
	if p.Sent == "" {
		p.Sent = DefaultSentFolder
	}
	return p
}

// validate says everything that is wrong with a profile at once.
func (p MailProfile) validate(env string) error {
	var problems []string
	if a, err := mail.ParseAddress(p.From); err != nil || a.Name != "" || a.Address != p.From {
		problems = append(problems, fmt.Sprintf("sender address %q is not a plain e-mail address (name@example.nl)", p.From))
	}
	problems = append(problems, p.SMTP.problems("SMTP")...)
	imapGiven := p.IMAP != MailServer{}
	if imapGiven {
		problems = append(problems, p.IMAP.problems("IMAP")...)
		if p.IMAP.User == "" {
			problems = append(problems, "IMAP needs a user to log in to the mailbox")
		}
		if p.Folder == p.Processed {
			problems = append(problems, fmt.Sprintf("the folder read (%s) and the folder for processed mail (%s) must differ, or mail is read again and again",
				p.Folder, p.Processed))
		}
	}
	for _, f := range []struct{ what, v string }{{"folder", p.Folder}, {"processed folder", p.Processed}, {"sent folder", p.Sent}} {
		if strings.TrimSpace(f.v) != f.v || len(f.v) > 200 || strings.ContainsAny(f.v, "\r\n\x00") {
			problems = append(problems, fmt.Sprintf("%s %q: use a folder name without surrounding spaces or line breaks", f.what, f.v))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: e-mail profile of environment %s: %s", ErrInvalid, env, strings.Join(problems, "; "))
	}
	return nil
}

func (m MailServer) problems(what string) []string {
	var out []string
	switch {
	case m.Host == "":
		out = append(out, what+" needs a host")
	case len(m.Host) > 253 || strings.ContainsAny(m.Host, " /:@\t\r\n") && net.ParseIP(m.Host) == nil:
		out = append(out, fmt.Sprintf("%s host %q is not a host name (give the port apart)", what, m.Host))
	}
	if m.Port < 1 || m.Port > 65535 {
		out = append(out, fmt.Sprintf("%s port %d is not a port (1-65535)", what, m.Port))
	}
	switch m.Security {
	case SecurityTLS, SecurityStartTLS:
	case SecurityNone:
		if !loopbackHost(m.Host) {
			out = append(out, fmt.Sprintf("%s security none sends the password and the invoices in the clear: it is only allowed for a server on this "+
				"machine (localhost, 127.0.0.1, ::1), not %s; use tls or starttls", what, m.Host))
		}
	default:
		out = append(out, fmt.Sprintf("%s security %q: use tls (implicit TLS, port 465/993), starttls (port 587/143) or, on this machine only, none",
			what, m.Security))
	}
	return out
}

func loopbackHost(h string) bool {
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// sealProfile is the row to store: passwords sealed, an empty one kept from old while
// the user stays.
func (s *Store) sealProfile(env string, id int64, p MailProfile, old *mailProfileRow) (mailProfileRow, error) {
	row := mailProfileRow{EnvironmentID: id, From: p.From, SMTPHost: p.SMTP.Host, SMTPPort: p.SMTP.Port, SMTPSecurity: p.SMTP.Security,
		SMTPUser: p.SMTP.User, IMAPHost: p.IMAP.Host, IMAPPort: p.IMAP.Port, IMAPSecurity: p.IMAP.Security, IMAPUser: p.IMAP.User,
		Folder: p.Folder, Processed: p.Processed, Sent: p.Sent, Local: p.Local}
	var oldSMTP, oldIMAP []byte
	if old != nil {
		if old.SMTPUser == p.SMTP.User {
			oldSMTP = old.SMTPPassword
		}
		if old.IMAPUser == p.IMAP.User {
			oldIMAP = old.IMAPPassword
		}
	}
	var err error
	if row.SMTPPassword, err = s.sealSecret(env, "SMTP", p.SMTP, oldSMTP); err != nil {
		return row, err
	}
	row.IMAPPassword, err = s.sealSecret(env, "IMAP", p.IMAP, oldIMAP)
	return row, err
}

func (s *Store) sealSecret(env, what string, srv MailServer, old []byte) ([]byte, error) {
	switch {
	case srv.User == "" && srv.Password != "":
		return nil, fmt.Errorf("%w: e-mail profile of environment %s: a %s password without a user: give the user too", ErrInvalid, env, what)
	case srv.User == "":
		return nil, nil
	case srv.Password == "":
		return old, nil
	case s.secrets == nil:
		return nil, fmt.Errorf("%w: e-mail profile of environment %s: its %s password is stored encrypted, and no key is configured: set %s "+
			"(make one with `openssl rand -base64 32`) for the service and the commands, then set the profile again",
			ErrInvalid, env, what, secrets.EnvVar)
	}
	if old != nil {
		// The same password again is no change: keep its sealed bytes, so the log does
		// not claim one.
		if plain, err := s.secrets.Open(old); err == nil && string(plain) == srv.Password {
			return old, nil
		}
	}
	return s.secrets.Seal([]byte(srv.Password)), nil
}

func (s *Store) openSecret(env, what string, sealed []byte) (string, error) {
	if sealed == nil {
		return "", nil
	}
	if s.secrets == nil {
		return "", fmt.Errorf("the %s password of environment %s's e-mail profile is stored encrypted, and no key is configured: set %s to the key "+
			"it was stored with", what, env, secrets.EnvVar)
	}
	plain, err := s.secrets.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("the %s password of environment %s's e-mail profile: %w", what, env, err)
	}
	return string(plain), nil
}

// profileChanges says what differs between the stored profile and the new one, in
// words for the log; a password only as set, changed or removed.
func profileChanges(old *mailProfileRow, row mailProfileRow) []string {
	var o mailProfileRow
	if old != nil {
		o = *old
	}
	server := func(host string, port int, sec, user string) string {
		if host == "" {
			return "none"
		}
		s := fmt.Sprintf("%s:%d %s", host, port, sec)
		if user != "" {
			s += " user " + user
		}
		return s
	}
	var out []string
	add := func(what, before, after string) {
		if before != after {
			if old == nil {
				out = append(out, fmt.Sprintf("%s %s", what, after))
			} else {
				out = append(out, fmt.Sprintf("%s %s → %s", what, before, after))
			}
		}
	}
	add("sender", o.From, row.From)
	add("SMTP", server(o.SMTPHost, o.SMTPPort, o.SMTPSecurity, o.SMTPUser), server(row.SMTPHost, row.SMTPPort, row.SMTPSecurity, row.SMTPUser))
	add("IMAP", server(o.IMAPHost, o.IMAPPort, o.IMAPSecurity, o.IMAPUser), server(row.IMAPHost, row.IMAPPort, row.IMAPSecurity, row.IMAPUser))
	if row.IMAPHost != "" {
		add("folders", fmt.Sprintf("%s/%s/%s", o.Folder, o.Processed, o.Sent), fmt.Sprintf("%s/%s/%s", row.Folder, row.Processed, row.Sent))
	}
	if old == nil || o.Local != row.Local {
		if row.Local {
			out = append(out, "on the local development mail server")
		} else if old != nil {
			out = append(out, "no longer on the local development mail server")
		}
	}
	out = append(out, passwordChange("SMTP", o.SMTPPassword, row.SMTPPassword)...)
	out = append(out, passwordChange("IMAP", o.IMAPPassword, row.IMAPPassword)...)
	return out
}

// passwordChange compares sealed bytes: sealProfile keeps them as they were for a
// password that did not change.
func passwordChange(what string, before, after []byte) []string {
	switch {
	case before == nil && after != nil:
		return []string{what + " password set"}
	case before != nil && after == nil:
		return []string{what + " password removed"}
	case !bytes.Equal(before, after):
		return []string{what + " password changed"}
	}
	return nil
}

func prefixed(prefix, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
