package store_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"koerier/domain"
	"koerier/internal/secrets"
	"koerier/internal/testdb"
	"koerier/store"
)

// newMailStore is a store whose e-mail profiles are sealed with box (nil: no key).
func newMailStore(t *testing.T, url string, box *secrets.Box) *fixture {
	t.Helper()
	cat, err := domain.DefaultCatalog().WithBerichtsoorten("ib=IB_TEST,vpb=VPB_TEST,kvk=KVK_TEST")
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, url, store.Options{Migrate: true, Catalog: &cat, MaxConns: 10, Secrets: box})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &fixture{Store: s, url: url, t: t}
}

func newBox(t *testing.T) *secrets.Box {
	t.Helper()
	b, err := secrets.Parse(secrets.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	smtpSecret = "smtp-Geheim-7781"
	imapSecret = "imap-Geheim-9912"
)

func fullProfile() store.MailProfile {
	return store.MailProfile{From: "facturen@acme.example",
		SMTP: store.MailServer{Host: "smtp.acme.example", Port: 587, Security: "starttls", User: "acme", Password: smtpSecret},
		IMAP: store.MailServer{Host: "imap.acme.example", Port: 993, Security: "tls", User: "acme-in", Password: imapSecret}}
}

// sealed reads the stored password columns as they are in the table.
func (f *fixture) sealed(env int64) (smtp, imap []byte) {
	f.t.Helper()
	if err := f.DB().QueryRowContext(ctx, `SELECT smtp_password, imap_password FROM environment_mail_profiles WHERE environment_id = $1`, env).
		Scan(&smtp, &imap); err != nil {
		f.t.Fatal(err)
	}
	return smtp, imap
}

// Issue 13: passwords are stored sealed, never logged, and read back with the key they
// were stored with.
func TestMailProfileRoundTripSealsPasswords(t *testing.T) {
	url := testdb.New(t)
	f := newMailStore(t, url, newBox(t))
	acme := f.env("acme")
	if err := f.SetMailProfile(ctx, "acme", fullProfile(), "tester"); err != nil {
		t.Fatal(err)
	}
	got, err := f.MailProfile(ctx, acme.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := fullProfile()
	want.Folder, want.Processed, want.Sent = "INBOX", "Koerier/Verwerkt", "Sent"
	if got != want {
		t.Fatalf("profile read back:\n got %+v\nwant %+v", got, want)
	}
	smtp, imap := f.sealed(acme.ID)
	if len(smtp) == 0 || len(imap) == 0 || bytes.Contains(smtp, []byte(smtpSecret)) || bytes.Contains(imap, []byte(imapSecret)) ||
		bytes.Contains(smtp, []byte("Geheim")) {
		t.Fatalf("passwords are not sealed in the table: %q %q", smtp, imap)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE description LIKE '%Geheim%' OR information LIKE '%Geheim%'`); n != 0 {
		t.Fatalf("a password is in the log (%d lines)", n)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE description LIKE 'e-mail profile of environment acme set by tester:%'
		AND description LIKE '%SMTP password set%' AND description LIKE '%smtp.acme.example:587 starttls%'`); n != 1 {
		t.Fatalf("the I line of the new profile: %d", n)
	}
	env, err := f.Environment(ctx, "acme")
	if err != nil || !env.Profile().HasEmail() || env.MailFrom != "facturen@acme.example" {
		t.Fatalf("the environment's profile does not report the e-mail profile: %+v %v", env, err)
	}

	// An empty password keeps the stored one; only what changed is logged.
	p := fullProfile()
	p.From, p.SMTP.Password, p.IMAP.Password = "boekhouding@acme.example", "", ""
	if err := f.SetMailProfile(ctx, "acme", p, "tester"); err != nil {
		t.Fatal(err)
	}
	got, err = f.MailProfile(ctx, acme.ID)
	if err != nil || got.SMTP.Password != smtpSecret || got.IMAP.Password != imapSecret || got.From != "boekhouding@acme.example" {
		t.Fatalf("after an update without passwords: %+v %v", got, err)
	}
	smtp2, imap2 := f.sealed(acme.ID)
	if !bytes.Equal(smtp, smtp2) || !bytes.Equal(imap, imap2) {
		t.Fatal("the stored passwords changed though none was given")
	}
	var line string
	if err := f.DB().GetContext(ctx, &line, `SELECT description FROM communication_log WHERE description LIKE 'e-mail profile of environment acme changed%'`); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(line, "sender facturen@acme.example → boekhouding@acme.example") || strings.Contains(line, "password") {
		t.Fatalf("change line: %s", line)
	}
	// The same profile with the same password again is no change and no line.
	p.SMTP.Password = smtpSecret
	before := f.count(`SELECT count(*) FROM communication_log`)
	if err := f.SetMailProfile(ctx, "acme", p, "tester"); err != nil {
		t.Fatal(err)
	}
	if after := f.count(`SELECT count(*) FROM communication_log`); after != before {
		t.Fatalf("setting the same profile again wrote %d line(s)", after-before)
	}
	// A new password is sealed anew and logged as changed, not shown.
	p.SMTP.Password = "nieuw-Geheim-1"
	if err := f.SetMailProfile(ctx, "acme", p, "tester"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.MailProfile(ctx, acme.ID); got.SMTP.Password != "nieuw-Geheim-1" {
		t.Fatalf("new password: %+v", got.SMTP)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE description LIKE '%SMTP password changed%' AND description NOT LIKE '%Geheim%'`); n != 1 {
		t.Fatalf("password change line: %d", n)
	}

	// Another key cannot open them, and says so; no key at all says what to set.
	_, err = newMailStore(t, url, newBox(t)).MailProfile(ctx, acme.ID)
	if err == nil || !strings.Contains(err.Error(), "does not match the key it was stored with") || !strings.Contains(err.Error(), "acme") {
		t.Fatalf("wrong key: %v", err)
	}
	nokey := newMailStore(t, url, nil)
	if _, err := nokey.MailProfile(ctx, acme.ID); err == nil || !strings.Contains(err.Error(), "KOERIER_SECRET_KEY") {
		t.Fatalf("no key, reading: %v", err)
	}
	nokey.env("beta")
	if err := nokey.SetMailProfile(ctx, "beta", fullProfile(), "tester"); !errors.Is(err, store.ErrInvalid) ||
		!strings.Contains(err.Error(), "KOERIER_SECRET_KEY") {
		t.Fatalf("no key, setting a password: %v", err)
	}
	// Without passwords no key is needed.
	open := store.MailProfile{From: "beta@koerier.test", SMTP: store.MailServer{Host: "127.0.0.1", Port: 2525, Security: "none"}, Local: true}
	if err := nokey.SetMailProfile(ctx, "beta", open, "tester"); err != nil {
		t.Fatal(err)
	}
	if got, err := nokey.MailProfile(ctx, nokey.mustEnv("beta").ID); err != nil || got.SMTP.Host != "127.0.0.1" || !got.Local || got.HasMailbox() {
		t.Fatalf("profile without passwords: %+v %v", got, err)
	}

	// Every environment with a profile has an e-mail send/receive, a send-only one too
	// (it sends its due e-invoices; there is no mailbox to read).
	envs, err := f.MailEnvironments(ctx)
	if err != nil || len(envs) != 2 || envs[0].Name != "acme" || envs[1].Name != "beta" {
		t.Fatalf("mail environments: %+v %v", envs, err)
	}
	if err := f.ClearMailProfile(ctx, "acme", "tester"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.MailProfile(ctx, acme.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cleared profile: %v", err)
	}
	if envs, _ := f.MailEnvironments(ctx); len(envs) != 1 || envs[0].Name != "beta" {
		t.Fatalf("a cleared profile still has its send/receive: %+v", envs)
	}
	// Clearing what is not there changes nothing: no second line.
	if err := f.ClearMailProfile(ctx, "acme", "tester"); err != nil {
		t.Fatal(err)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE description =
		'e-mail profile of environment acme removed by tester: it no longer sends or receives e-invoices'`); n != 1 {
		t.Fatalf("the clear line: %d", n)
	}
}

func (f *fixture) mustEnv(name string) store.Environment {
	f.t.Helper()
	e, err := f.Environment(ctx, name)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

func TestMailProfileRefusals(t *testing.T) {
	f := newMailStore(t, testdb.New(t), newBox(t))
	f.env("acme")
	for name, c := range map[string]struct {
		edit func(*store.MailProfile)
		want string
	}{
		"sender":         {func(p *store.MailProfile) { p.From = "Acme <f@acme.example>" }, "not a plain e-mail address"},
		"security":       {func(p *store.MailProfile) { p.SMTP.Security = "ssl" }, "use tls"},
		"clear text":     {func(p *store.MailProfile) { p.SMTP.Security = "none" }, "only allowed for a server on this machine"},
		"port":           {func(p *store.MailProfile) { p.SMTP.Port = 0 }, "SMTP port 0"},
		"host with port": {func(p *store.MailProfile) { p.SMTP.Host = "smtp.acme.example:587" }, "give the port apart"},
		"half a mailbox": {func(p *store.MailProfile) { p.IMAP = store.MailServer{Host: "imap.acme.example"} }, "IMAP port 0"},
		"imap user":      {func(p *store.MailProfile) { p.IMAP.User, p.IMAP.Password = "", "" }, "IMAP needs a user"},
		"same folders":   {func(p *store.MailProfile) { p.Processed = "INBOX" }, "must differ"},
	} {
		p := fullProfile()
		c.edit(&p)
		err := f.SetMailProfile(ctx, "acme", p, "tester")
		if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := f.count(`SELECT count(*) FROM environment_mail_profiles`); n != 0 {
		t.Fatalf("a refused profile was stored (%d)", n)
	}
	if _, err := f.RemoveEnvironment(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := f.SetMailProfile(ctx, "acme", fullProfile(), "tester"); !errors.Is(err, store.ErrRefused) {
		t.Fatalf("removed environment: %v", err)
	}
	if err := f.SetMailProfile(ctx, "nobody", fullProfile(), "tester"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown environment: %v", err)
	}
}
