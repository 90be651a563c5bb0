package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/internal/demo"
	"koerier/internal/testdb"
	"koerier/store"
)

// catalogEnv clears the catalog settings, so that the developer's own do not leak in.
func catalogEnv(t *testing.T, kv ...string) {
	t.Helper()
	for _, k := range []string{"KOERIER_BERICHTSOORTEN", "KOERIER_IDENTITY_TYPES", "KOERIER_BIJLAGEN"} {
		t.Setenv(k, "")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

func writeFile(t *testing.T, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The size is checked before the file is read: a file over Digipoort's limit is
// refused before anything else happens (here: before the unreachable database).
func TestQueueRefusesAnOversizedFileBeforeReadingIt(t *testing.T) {
	catalogEnv(t)
	t.Setenv("KOERIER_DATABASE_URL", "postgres://postgres@127.0.0.1:1/koerier?sslmode=disable&connect_timeout=2")
	big := filepath.Join(t.TempDir(), "big.xbrl")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: 20 MiB and one byte that take no room on disk.
	if err := f.Truncate(domain.MaxAttachmentSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	base := []string{"queue", "--env", "acme", "--type", "btw", "--subject", "001000044B37", "--period", "2026-10"}
	_, err = run(t, append(base, "--file", big)...)
	if err == nil || !strings.Contains(err.Error(), "over Digipoort's limit of 20971520 bytes") || !strings.Contains(err.Error(), "not read") {
		t.Fatalf("want the size refused before reading, got %v", err)
	}
	decl := writeFile(t, "aangifte.xbrl", demo.VATReturn)
	_, err = run(t, append(base, "--file", decl, "--file", t.TempDir())...)
	if err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Fatalf("want a directory refused, got %v", err)
	}
}

func useDatabase(t *testing.T) string {
	t.Helper()
	url := testdb.New(t)
	t.Setenv("KOERIER_DATABASE_URL", url)
	return url
}

// acmeStore opens the test database, migrated with the default catalog, holding the
// environment "acme"; it is closed when the test ends.
func acmeStore(t *testing.T, url string) *store.Store {
	t.Helper()
	cat := domain.DefaultCatalog()
	st, err := store.Open(context.Background(), url, store.Options{Migrate: true, Catalog: &cat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.AddEnvironment(context.Background(), store.Environment{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	return st
}

// queueVAT queues the demo VAT return in "acme" and returns its number.
func queueVAT(t *testing.T, st *store.Store, subject, period string) int64 {
	t.Helper()
	q, err := st.Queue(context.Background(), store.QueueRequest{Environment: "acme", Type: domain.TypeVAT, Subject: subject, Period: period,
		Attachments: []domain.Attachment{{FileName: "aangifte.xbrl", MimeType: "application/xml", Content: demo.VATReturn}}})
	if err != nil {
		t.Fatal(err)
	}
	return q.Number
}

// At the command line ("Further files", "One form for subject and period" in docs/rules.md): a
// picture is no VAT return, and a second file for a type that takes none is refused, never
// dropped.
func TestQueueRefusesWhatCannotBeSent(t *testing.T) {
	catalogEnv(t)
	useDatabase(t)
	png := writeFile(t, "aangifte.png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"))
	decl := writeFile(t, "aangifte.xbrl", demo.VATReturn)
	pdf := writeFile(t, "toelichting.pdf", []byte("%PDF-1.7\n"))
	base := []string{"queue", "--env", "acme", "--type", "btw", "--subject", "NL001000044B37", "--period", "2026-10"}
	for _, c := range []struct {
		files []string
		want  []string
	}{
		{[]string{png}, []string{"aangifte.png", "declared as image/png", "XBRL instance"}},
		{[]string{decl, pdf}, []string{"toelichting.pdf", "not known to take attachments", "KOERIER_BIJLAGEN=btw=yes"}},
	} {
		args := append([]string(nil), base...)
		for _, f := range c.files {
			args = append(args, "--file", f)
		}
		_, err := run(t, args...)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Fatalf("queue %v: got %v, want an error containing %q", c.files, err, w)
			}
		}
	}
}

// See "Identity of the belanghebbende" in docs/rules.md: `starter types` prints what each type
// is sent as, with this installation's settings, and the exact identiteitBelanghebbende for a
// subject.
func TestTypesCommand(t *testing.T) {
	catalogEnv(t)
	out, err := run(t, "types", "--json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"type": "btw"`, `"identity_type": "BTW"`, `"berichtsoort": "Omzetbelasting"`, `"identity_type": "LHnr"`,
		`NL001000044B37`, `"attachments": false`} {
		if !strings.Contains(out, want) {
			t.Errorf("types --json lacks %s:\n%s", want, out)
		}
	}
	out, err = run(t, "types", "--type", "btw", "--subject", " nl 0010.00.044.b37 ")
	if err != nil || !strings.Contains(out, "<identiteitBelanghebbende><nummer>NL001000044B37</nummer><type>BTW</type></identiteitBelanghebbende>") ||
		!strings.Contains(out, "stored as 001000044B37") {
		t.Fatalf("types --subject: %v\n%s", err, out)
	}

	catalogEnv(t, "KOERIER_IDENTITY_TYPES", "btw=Fi", "KOERIER_BIJLAGEN", "vpb=yes")
	out, err = run(t, "types", "--type", "btw", "--subject", "NL001000044B37")
	if err != nil || !strings.Contains(out, "<nummer>001000044B37</nummer><type>Fi</type>") {
		t.Fatalf("with btw=Fi: %v\n%s", err, out)
	}
	out, err = run(t, "types", "--type", "vpb")
	if err != nil || !strings.Contains(out, "identity type  Fi") || !strings.Contains(out, "further files are sent as berichtBijlagen") ||
		!strings.Contains(out, "KOERIER_BERICHTSOORTEN=vpb=") {
		t.Fatalf("types --type vpb: %v\n%s", err, out)
	}
	if _, err := run(t, "types", "--type", "ib", "--subject", "123456789"); err == nil || !strings.Contains(err.Error(), "elfproef") {
		t.Errorf("a BSN that fails the elfproef: %v", err)
	}

	catalogEnv(t, "KOERIER_IDENTITY_TYPES", "ib=BTW")
	if _, err := run(t, "types"); err == nil || !strings.Contains(err.Error(), "KOERIER_IDENTITY_TYPES") || !strings.Contains(err.Error(), "use Fi") {
		t.Errorf("a setting that cannot work must be refused, naming the variable: %v", err)
	}
}

// The 500's statusdetails are shown with the message, labelled as the authority's
// acknowledgement.
func TestShowPrintsTheAcknowledgement(t *testing.T) {
	catalogEnv(t)
	url := useDatabase(t)
	ctx := context.Background()
	st := acmeStore(t, url)
	n := queueVAT(t, st, "NL001000044B37", "2026-10")
	plan, err := st.BeginDelivery(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordDelivered(ctx, n, plan.Attempt, "K-show", ""); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var replies []store.Reply
	for i, c := range []string{"105", "100", "110", "200", "301", "405", "400", "500"} {
		replies = append(replies, store.ReplyFromCode("K-show", c, at.Add(time.Duration(i)*time.Minute)))
	}
	// The shape of a 500 captured from Logius' conformance environment.
	replies[7].Details = "<Responsemessage version=\"2006.1\">\n<Identification>\n<MessageId>uuid-1</MessageId>\n" +
		"<RefersToMessageId>K-show</RefersToMessageId>\n<MessageIdBd>BD-0001</MessageIdBd>\n" +
		"<DatumTijdOntvangst>2026-11-02T10:07:00+01:00</DatumTijdOntvangst>\n<ResponseType>acknowledgement</ResponseType>\n" +
		"</Identification>\n<Specification>\n<Class>A</Class>\n<Code>0001</Code>\n<Description>Status: Verwerkbaar</Description>\n" +
		"</Specification>\n</Responsemessage>"
	if _, err := st.ApplyReplies(ctx, replies); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "show", itoa(n))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"identiteitBelanghebbende NL001000044B37 (type BTW)",
		"declaration  aangifte.xbrl (application/xml",
		"acknowledgement of the authority (statusdetails of Digipoort status 500, kenmerk K-show",
		"  acknowledgement A 0001: Status: Verwerkbaar; received 2026-11-02T10:07:00+01:00, the authority's id BD-0001\n",
		"\n  <MessageIdBd>BD-0001</MessageIdBd>\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "<Responsemessage") != 1 {
		t.Errorf("the acknowledgement is printed once, labelled:\n%s", out)
	}
	out, err = run(t, "show", itoa(n), "--json")
	if err != nil || !strings.Contains(out, `"acknowledgement": {`) || !strings.Contains(out, `"authority_message_id": "BD-0001"`) ||
		!strings.Contains(out, `"text": "\u003cResponsemessage`) {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
