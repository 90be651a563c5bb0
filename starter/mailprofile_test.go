package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.temporal.io/api/serviceerror"

	"koerier/internal/config"
	"koerier/internal/secrets"
	"koerier/pipeline"
	"koerier/store"
)

// runIn is run with stdin.
func runIn(t *testing.T, stdin string, args ...string) (stdout, stderrOut string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// keyStore opens the test database with the key the commands use, to read what they
// stored.
func keyStore(t *testing.T, url string) *store.Store {
	t.Helper()
	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), url, store.Options{Migrate: true, Catalog: &cfg.Catalog, Secrets: cfg.Secrets})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func profileOf(t *testing.T, st *store.Store, env string) (store.MailProfile, error) {
	t.Helper()
	e, err := st.Environment(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	return st.MailProfile(context.Background(), e.ID)
}

// A password is never taken as a flag value (ps, shell history), and the refusal does
// not repeat it; it is refused before anything is opened (the database here does not
// answer).
func TestMailProfileRefusesAPasswordOnTheCommandLine(t *testing.T) {
	catalogEnv(t)
	t.Setenv("KOERIER_DATABASE_URL", "postgres://postgres@127.0.0.1:1/koerier?sslmode=disable&connect_timeout=2")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"environments", "set", "acme", "--smtp-password", "hunter2"}, "--smtp-password-file FILE"},
		{[]string{"environments", "add", "acme", "--email-from", "a@acme.example", "--smtp", "smtp.acme.example:587", "--imap-password=hunter2"},
			"--imap-password-file FILE"},
		{[]string{"environments", "set", "acme", "--password", "hunter2"}, "visible in ps"},
	} {
		_, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "is refused") {
			t.Errorf("%v: got %v, want a refusal naming %q", c.args, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v: the refusal repeats the password: %v", c.args, err)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"environments", "set", "acme", "--local-mail", "--smtp", "h:25"}, "leave out --smtp"},
		{[]string{"environments", "set", "acme", "--local-mail", "--no-mail"}, "contradict"},
		{[]string{"environments", "set", "acme", "--no-mail", "--email-from", "a@b.example"}, "leave out --email-from"},
	} {
		if _, err := run(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
	}
}

// --local-mail without the settings of `make run` says what to do, and adds nothing.
func TestLocalMailWithoutTheLocalServerGivesAdvice(t *testing.T) {
	catalogEnv(t)
	url := useDatabase(t)
	for _, k := range []string{envDevSMTP, envDevIMAP, envDevPassword} {
		t.Setenv(k, "")
	}
	_, err := run(t, "environments", "add", "verkoop", "--local-mail")
	for _, want := range []string{"KOERIER_DEV_SMTP", "make run", "source .koerier/env.sh"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want advice naming %q", err, want)
		}
	}
	st := keyStore(t, url)
	if _, err := st.Environment(context.Background(), "verkoop"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the environment was added although its profile could not be made: %v", err)
	}
	if _, err := run(t, "environments", "add", "verkoop"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "environments", "set", "verkoop", "--local-mail"); err == nil || !strings.Contains(err.Error(), "source .koerier/env.sh") {
		t.Fatalf("set --local-mail: %v", err)
	}
}

// Passwords come from a file or stdin, are stored encrypted (only the key opens them)
// and are never printed; flags not given keep the stored profile; the environment's
// e-mail schedule follows the profile; the list shows servers without passwords.
func TestMailProfileFromPasswordFiles(t *testing.T) {
	catalogEnv(t)
	url := useDatabase(t)
	tc := useTemporal(t)
	t.Setenv(secrets.EnvVar, secrets.NewKey())
	ctx := context.Background()
	const smtpPassword, imapPassword = "s3cret-smtp pass", "imap-pass-2"
	pwFile := writeFile(t, "smtp-password", []byte(smtpPassword+"\n"))

	if _, err := run(t, "environments", "add", "acme", "--email-from", "facturen@acme.example", "--smtp", "smtp.acme.example:587",
		"--smtp-user", "facturen", "--smtp-password-file", writeFile(t, "empty", nil)); err == nil || !strings.Contains(err.Error(), "holds no password") {
		t.Fatalf("an empty password file: %v", err)
	}
	out, errOut, err := runIn(t, "", "environments", "add", "acme", "--email-from", "facturen@acme.example", "--smtp", "smtp.acme.example:587",
		"--smtp-user", "facturen", "--smtp-password-file", pwFile, "--imap", "imap.acme.example:993")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"environment acme added", "from facturen@acme.example", "SMTP smtp.acme.example:587 starttls as facturen",
		"IMAP imap.acme.example:993 tls as facturen", "schedule koerier-mail-acme created"} {
		if !strings.Contains(out, want) {
			t.Errorf("add lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, smtpPassword) {
		t.Fatalf("add printed the password:\n%s%s", out, errOut)
	}
	st := keyStore(t, url)
	p, err := profileOf(t, st, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if p.SMTP.Password != smtpPassword || p.IMAP.User != "facturen" || p.IMAP.Password != smtpPassword || p.Local {
		t.Fatalf("stored profile: SMTP user %q, IMAP user %q, passwords from the file: %v/%v", p.SMTP.User, p.IMAP.User,
			p.SMTP.Password == smtpPassword, p.IMAP.Password == smtpPassword)
	}
	if _, err := tc.ScheduleClient().GetHandle(ctx, pipeline.MailScheduleID("acme")).Describe(ctx); err != nil {
		t.Fatalf("the e-mail schedule was not created: %v", err)
	}
	// Only the key opens the stored password.
	noKey, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer noKey.Close()
	if _, err := profileOf(t, noKey, "acme"); err == nil || !strings.Contains(err.Error(), secrets.EnvVar) {
		t.Fatalf("a store without the key read the profile: %v", err)
	}

	// One flag changes one thing: the IMAP password from stdin, the rest stays.
	out, errOut, err = runIn(t, imapPassword+"\n", "environments", "set", "acme", "--imap-password-file", "-")
	if err != nil || strings.Contains(out+errOut, imapPassword) || !strings.Contains(out, "schedule koerier-mail-acme updated") {
		t.Fatalf("set --imap-password-file -: %v\n%s%s", err, out, errOut)
	}
	if p, err = profileOf(t, st, "acme"); err != nil || p.IMAP.Password != imapPassword || p.SMTP.Password != smtpPassword ||
		p.SMTP.Host != "smtp.acme.example" || p.From != "facturen@acme.example" {
		t.Fatalf("after set: %v, SMTP %s, IMAP password from stdin %v, SMTP password kept %v", err, p.SMTP.Host, p.IMAP.Password == imapPassword,
			p.SMTP.Password == smtpPassword)
	}

	// The server's own Sent folder (Exchange's "Sent Items"), where an interrupted send is
	// looked up; the other folders stay.
	if out, err = run(t, "environments", "set", "acme", "--sent-folder", "Sent Items"); err != nil {
		t.Fatalf("set --sent-folder: %v\n%s", err, out)
	}
	if p, err = profileOf(t, st, "acme"); err != nil || p.Sent != "Sent Items" || p.Folder != store.DefaultMailFolder ||
		p.Processed != store.DefaultProcessedFolder || p.IMAP.Password != imapPassword {
		t.Fatalf("after set --sent-folder: %v, folders %q/%q/%q, IMAP password kept %v", err, p.Folder, p.Processed, p.Sent,
			p.IMAP.Password == imapPassword)
	}
	if _, err := run(t, "environments", "set", "acme", "--no-mail", "--processed-folder", "Done"); err == nil ||
		!strings.Contains(err.Error(), "leave out --processed-folder") {
		t.Fatalf("--no-mail with a folder: %v", err)
	}

	out, err = run(t, "environments", "list", "--json")
	var list []struct {
		Name string    `json:"name"`
		Mail *mailView `json:"mail"`
	}
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Mail == nil ||
		list[0].Mail.SMTP != "smtp.acme.example:587" || list[0].Mail.IMAP != "imap.acme.example:993" || list[0].Mail.Folder != "INBOX" {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if strings.Contains(out, smtpPassword) || strings.Contains(out, imapPassword) || strings.Contains(strings.ToLower(out), "password") {
		t.Fatalf("list --json shows a password:\n%s", out)
	}
	if out, err = run(t, "environments", "list"); err != nil || !strings.Contains(out, "facturen@acme.example") ||
		!strings.Contains(out, "imap.acme.example:993 tls INBOX") {
		t.Fatalf("list: %v\n%s", err, out)
	}

	// Without a mailbox no schedule reads it; without a profile no e-invoice is queued.
	if out, err = run(t, "environments", "set", "acme", "--no-mail"); err != nil || !strings.Contains(out, "schedule koerier-mail-acme removed") {
		t.Fatalf("set --no-mail: %v\n%s", err, out)
	}
	if _, err := profileOf(t, st, "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the profile is still there: %v", err)
	}
	var nf *serviceerror.NotFound
	if _, err := tc.ScheduleClient().GetHandle(ctx, pipeline.MailScheduleID("acme")).Describe(ctx); !errors.As(err, &nf) {
		t.Fatalf("the e-mail schedule is still there: %v", err)
	}
	if _, err := run(t, "environments", "set", "acme", "--smtp-user", "x"); err == nil || !strings.Contains(err.Error(), "--email-from ADDRESS and --smtp HOST:PORT") {
		t.Fatalf("a partial profile for an environment without one: %v", err)
	}
	if out, err = run(t, "environments", "list", "--json"); err != nil || !strings.Contains(out, `"mail": null`) {
		t.Fatalf("list --json without a profile: %v\n%s", err, out)
	}
}
