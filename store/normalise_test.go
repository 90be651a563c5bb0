package store_test

import (
	"crypto/sha256"
	"database/sql"
	"strings"
	"testing"

	"koerier/domain"
	"koerier/internal/testdb"
	"koerier/schema/migrations"
	"koerier/store"
)

// oldRelease is a database as the release before migration 00004 left it: subjects and
// periods stored as they were queued, with environment acme.
type oldRelease struct {
	t     *testing.T
	url   string
	db    *sql.DB
	cat   domain.Catalog
	envID int64
}

func newOldRelease(t *testing.T, cat domain.Catalog) *oldRelease {
	t.Helper()
	url := testdb.New(t)
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if n, err := store.MigrateTo(ctx, db, cat, 3); err != nil || n != 3 {
		t.Fatalf("migrate to 00003: %d, %v", n, err)
	}
	o := &oldRelease{t: t, url: url, db: db, cat: cat}
	if err := db.QueryRow(`INSERT INTO environments (name) VALUES ('acme') RETURNING id`).Scan(&o.envID); err != nil {
		t.Fatal(err)
	}
	return o
}

func testCatalog(t *testing.T, attachments string) domain.Catalog {
	t.Helper()
	cat, err := domain.DefaultCatalog().WithBerichtsoorten("ib=IB_TEST,vpb=VPB_TEST,kvk=KVK_TEST")
	if err == nil && attachments != "" {
		cat, err = cat.WithAttachments(attachments)
	}
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

type oldMsg struct {
	typ             domain.MessageType
	subject, period string
	version         int
	status          domain.Status
	ref             string
	files           []domain.Attachment
	kenmerk         string // delivered with this kenmerk
	open            bool   // a delivery whose outcome is not known
}

// queue stores a message as the old store.Queue did: subject and period as given, the
// declaration key made of them, identity type Fi (the old default of the VAT types).
func (o *oldRelease) queue(m oldMsg) int64 {
	o.t.Helper()
	spec, err := o.cat.Lookup(m.typ)
	if err != nil {
		o.t.Fatal(err)
	}
	if m.version == 0 {
		m.version = 1
	}
	if m.status == "" {
		m.status = domain.StatusQueued
	}
	if len(m.files) == 0 {
		m.files = []domain.Attachment{xbrl(1)}
	}
	var ref any
	if m.ref != "" {
		ref = m.ref
	}
	key := domain.Declaration{Environment: "acme", Type: m.typ, Subject: m.subject, Period: m.period}.Key()
	var n int64
	if err := o.db.QueryRow(`
		INSERT INTO messages (direction, environment_id, message_type, subject, period, declaration_key, version, client_reference,
			berichtsoort, identity_type, fiscal, status, env_status)
		VALUES ('out', $1, $2, $3, $4, $5, $6, $7, $8, 'Fi', true, $9, $9) RETURNING number`,
		o.envID, m.typ, m.subject, m.period, key, m.version, ref, spec.Berichtsoort, m.status).Scan(&n); err != nil {
		o.t.Fatal(err)
	}
	for _, a := range m.files {
		sum := sha256.Sum256(a.Content)
		if _, err := o.db.Exec(`INSERT INTO attachments (message_number, file_name, mime_type, size, sha256, content) VALUES ($1, $2, $3, $4, $5, $6)`,
			n, a.FileName, a.MimeType, len(a.Content), sum[:], a.Content); err != nil {
			o.t.Fatal(err)
		}
	}
	if m.kenmerk != "" || m.open {
		var km any
		if m.kenmerk != "" {
			km = m.kenmerk
		}
		if _, err := o.db.Exec(`INSERT INTO deliveries (message_number, attempt, aanleverkenmerk, kenmerk, delivered_at)
			VALUES ($1, 1, $2, $3::text, CASE WHEN $3::text IS NULL THEN NULL ELSE now() END)`,
			n, domain.Aanleverkenmerk(domain.DefaultAanleverkenmerkPrefix, n, 1), km); err != nil {
			o.t.Fatal(err)
		}
	}
	return n
}

// upgrade opens the store of the new release on the old database: it migrates.
func (o *oldRelease) upgrade() *fixture {
	o.t.Helper()
	return newStoreWith(o.t, o.url, o.cat)
}

type storedMsg struct {
	Subject   string `db:"subject"`
	Period    string `db:"period"`
	Key       string `db:"declaration_key"`
	Version   int    `db:"version"`
	DoNotSend bool   `db:"do_not_send"`
	Needs     bool   `db:"needs_action"`
	Reason    string `db:"needs_action_reason"`
}

func (f *fixture) stored(number int64) storedMsg {
	f.t.Helper()
	var m storedMsg
	if err := f.DB().GetContext(ctx, &m, `SELECT subject, period, declaration_key, version, do_not_send, needs_action, needs_action_reason
		FROM messages WHERE number = $1`, number); err != nil {
		f.t.Fatal(err)
	}
	return m
}

// snapshot is every row the migration may touch, to compare two runs.
func (f *fixture) snapshot() string {
	f.t.Helper()
	var s string
	if err := f.DB().GetContext(ctx, &s, `SELECT concat_ws(E'\n',
		(SELECT json_agg(m ORDER BY number)::text FROM messages m),
		(SELECT json_agg(d ORDER BY message_number, attempt)::text FROM deliveries d),
		(SELECT json_agg(json_build_array(l.message_number, l.level, l.description, l.dedupe_key) ORDER BY l.id)::text FROM communication_log l),
		(SELECT count(*) FROM attachments)::text)`); err != nil {
		f.t.Fatal(err)
	}
	return s
}

// Rows queued before rule 18 are brought to the stored form, and then behave as if
// store.Queue had stored them so: the same declaration queued again is version 2 and
// supersedes the old one (rule 3), a client reference asked again finds its message
// (rule 1), a reply that names the subject as Digipoort does links (rule 4), and the
// look-up of a delivery whose outcome is not known asks for what was sent (rule 11).
func TestMigrationNormalisesWhatWasQueuedBefore(t *testing.T) {
	o := newOldRelease(t, testCatalog(t, ""))
	a := o.queue(oldMsg{typ: domain.TypeVAT, subject: "NL001000044B37", period: "2026-q3", ref: "ref-A"})
	b := o.queue(oldMsg{typ: domain.TypeICP, subject: " 001000044b37", period: "2026-q3", status: domain.StatusSent, kenmerk: "K-B"})
	c := o.queue(oldMsg{typ: domain.TypeVATFix, subject: "NL001000044B37", period: "2026-Q4", open: true})
	f := o.upgrade()

	for n, want := range map[int64]storedMsg{
		a: {Subject: "001000044B37", Period: "2026-Q3", Key: "acme/btw/001000044B37/2026-Q3", Version: 1},
		b: {Subject: "001000044B37", Period: "2026-Q3", Key: "acme/icp/001000044B37/2026-Q3", Version: 1},
		c: {Subject: "001000044B37", Period: "2026-Q4", Key: "acme/obsup/001000044B37/2026-Q4", Version: 1},
	} {
		if got := f.stored(n); got != want {
			t.Errorf("message %d after the migration: %+v, want %+v", n, got, want)
		}
		lines, err := f.ReadLog(ctx, store.LogFilter{Message: n, Step: domain.StepQueue})
		said := 0
		for _, l := range lines {
			if strings.Contains(l.Description, "stored in one form") && l.Level == domain.LevelInfo {
				said++
			}
		}
		if err != nil || said != 1 {
			t.Errorf("message %d: one I line says what was normalised: %+v %v", n, lines, err)
		}
	}

	// Rule 11: the look-up asks Digipoort for the belanghebbende the delivery named.
	plan, err := f.BeginDelivery(ctx, c)
	if err != nil || !plan.Uncertain || plan.Subject != "NL001000044B37" {
		t.Fatalf("the open delivery of message %d is looked up as NL001000044B37 (Fi, as sent): %+v %v", c, plan, err)
	}

	// Rule 1: the client asks again as it asked the first time.
	again, err := f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeVAT, Subject: "NL001000044B37", Period: "2026-q3",
		ClientReference: "ref-A", Attachments: []domain.Attachment{xbrl(1)}})
	if err != nil || !again.Existing || again.Number != a || again.Version != 1 {
		t.Fatalf("the same client reference returns message %d, version 1: %+v %v", a, again, err)
	}

	// Rule 3: the same declaration in yet another spelling is its version 2.
	v2, err := f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeVAT, Subject: "nl 001.000.044.b37", Period: "2026-Q3",
		Attachments: []domain.Attachment{xbrl(2)}})
	if err != nil || v2.Version != 2 || len(v2.Superseded) != 1 || v2.Superseded[0] != a {
		t.Fatalf("queued again: %+v %v; want version 2 superseding %d", v2, err, a)
	}
	if plan, err := f.BeginDelivery(ctx, a); err != nil || !strings.Contains(plan.Refused, "do-not-send") {
		t.Fatalf("the old version must not be sent: %+v %v", plan, err)
	}

	// Rule 4: Digipoort names the belanghebbende NL001000044B37 (type BTW); the reply
	// links by its aanleverkenmerk, whose message has that subject.
	res, err := f.StoreIncoming(ctx, []store.IncomingDoc{{PickupKenmerk: "K-other", Berichtkenmerk: "b1",
		Aanleverkenmerk: domain.Aanleverkenmerk(domain.DefaultAanleverkenmerkPrefix, b, 1), Berichtsoort: "ICP", Subject: "NL001000044B37",
		Content: []byte("<ok/>")}})
	if err != nil || len(res.Linked[b]) != 1 || len(res.Unknown) != 0 {
		t.Fatalf("the reply about NL001000044B37 links to message %d: %+v %v", b, res, err)
	}
}

// Spellings that are one declaration are not merged silently: versions are numbered in
// the order the messages were queued, only the latest may be sent (rule 3), and each
// message needs an operator with a reason and an F line. What cannot be put in the form
// stays as it is; open messages with further files their type does not take are held.
// A second run changes nothing.
func TestMigrationMergesSpellingsAndHoldsWhatItCannotDecide(t *testing.T) {
	o := newOldRelease(t, testCatalog(t, "vpb=yes"))
	x1 := o.queue(oldMsg{typ: domain.TypeVAT, subject: "NL001000044B37", period: "2026-q3", status: domain.StatusSent, kenmerk: "K-X1"})
	z := o.queue(oldMsg{typ: domain.TypeVAT, subject: "001000044B37", period: "2026-Q3"})
	y := o.queue(oldMsg{typ: domain.TypeVAT, subject: " \u200b001000044b37", period: "2026-Q3"})
	x2 := o.queue(oldMsg{typ: domain.TypeVAT, subject: "NL001000044B37", period: "2026-q3", version: 2})
	bad := o.queue(oldMsg{typ: domain.TypeVAT, subject: "NL12345", period: "2026-q3"})
	badDone := o.queue(oldMsg{typ: domain.TypeVAT, subject: "NL999", period: "2026-q2", status: domain.StatusAccepted, kenmerk: "K-done"})
	pdf := domain.Attachment{FileName: "toelichting.pdf", MimeType: "application/pdf", Content: []byte("%PDF-1.4")}
	held := o.queue(oldMsg{typ: domain.TypeVAT, subject: "NL002000044B37", period: "2026-q3", files: []domain.Attachment{xbrl(3), pdf}})
	taken := o.queue(oldMsg{typ: domain.TypeCorpTax, subject: "123456789 ", period: "2025", files: []domain.Attachment{xbrl(4), pdf}})
	f := o.upgrade()

	key := "acme/btw/001000044B37/2026-Q3"
	for n, want := range map[int64]struct {
		version   int
		doNotSend bool
	}{x1: {1, false}, z: {2, true}, y: {3, true}, x2: {4, false}} {
		got := f.stored(n)
		if got.Key != key || got.Version != want.version || got.DoNotSend != want.doNotSend || !got.Needs {
			t.Errorf("message %d: %+v; want version %d of %s, do-not-send %v, needs-action", n, got, want.version, key, want.doNotSend)
		}
		for _, s := range []string{"queued in 3 spellings", "version 4 (message", "is the return to file"} {
			if !strings.Contains(got.Reason, s) {
				t.Errorf("message %d: the reason %q must say %q", n, got.Reason, s)
			}
		}
		lines, err := f.ReadLog(ctx, store.LogFilter{Message: n, Level: domain.LevelError})
		if err != nil || len(lines) != 1 || lines[0].Description != got.Reason {
			t.Errorf("message %d: one F line with the reason: %+v %v", n, lines, err)
		}
	}
	if r := f.stored(y).Reason; !strings.Contains(r, "marked do-not-send now") {
		t.Errorf("the superseded version says so: %q", r)
	}
	if plan, err := f.BeginDelivery(ctx, y); err != nil || plan.Refused == "" {
		t.Errorf("an older version must not be sent: %+v %v", plan, err)
	}
	if q := f.queue("acme", domain.TypeVAT, "NL001000044B37", "2026-q3"); q.Version != 5 || len(q.Superseded) != 1 || q.Superseded[0] != x2 {
		t.Errorf("the next version continues the merged numbering: %+v", q)
	}

	if got := f.stored(bad); got.Subject != "NL12345" || got.Period != "2026-q3" || !got.Needs ||
		!strings.Contains(got.Reason, "cannot be put in it") || !strings.Contains(got.Reason, "queue it again") {
		t.Errorf("a subject that fails its form stays, and its open message needs action: %+v", got)
	}
	if got := f.stored(badDone); got.Subject != "NL999" || got.Needs {
		t.Errorf("a final message that cannot be normalised stays and needs nothing: %+v", got)
	}

	h := f.stored(held)
	if !h.Needs || !strings.HasPrefix(h.Reason, domain.DeliveryTrouble) || !strings.Contains(h.Reason, "toelichting.pdf") ||
		!strings.Contains(h.Reason, "KOERIER_BIJLAGEN=btw=yes") {
		t.Errorf("further files a type does not take hold the message: %+v", h)
	}
	if plan, err := f.BeginDelivery(ctx, held); err != nil || plan.Wait != h.Reason {
		t.Errorf("the held message is not delivered: %+v %v", plan, err)
	}
	if n := f.count(`SELECT count(*) FROM attachments WHERE message_number = $1`, held); n != 2 {
		t.Errorf("no file is dropped: %d", n)
	}
	if got := f.stored(taken); got.Needs || got.Subject != "123456789" {
		t.Errorf("further files of a type that takes them are no reason to hold: %+v", got)
	}

	// Running it again changes nothing: not the rows, not the log.
	before := f.snapshot()
	if _, err := f.DB().ExecContext(ctx, migrations.Schema00004); err != nil {
		t.Fatalf("the schema part again: %v", err)
	}
	rep, err := f.NormaliseStored(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Normalised)+len(rep.Merged)+len(rep.Superseded)+len(rep.SentSubject) != 0 {
		t.Errorf("the second run changed rows: %+v", rep)
	}
	if after := f.snapshot(); after != before {
		t.Errorf("the second run changed the database:\nbefore %s\nafter  %s", before, after)
	}
	if n, err := store.Migrate(ctx, f.DB().DB, f.Catalog()); err != nil || n != 0 {
		t.Errorf("migrate again: %d applied, %v", n, err)
	}
}

// A message queued with further files when Koerier dropped them is held when it would be
// delivered again after a restore, while its type takes none; with the setting on, it
// goes with its files. A message queued since goes as it was queued, whatever the
// settings are now.
func TestFurtherFilesQueuedBeforeAreHeldUntilTheTypeTakesThem(t *testing.T) {
	o := newOldRelease(t, testCatalog(t, ""))
	pdf := domain.Attachment{FileName: "bijlage.pdf", MimeType: "application/pdf", Content: []byte("%PDF-1.4")}
	n := o.queue(oldMsg{typ: domain.TypeVAT, subject: "NL003000044B37", period: "2026-q3", status: domain.StatusRejected, kenmerk: "K-R",
		files: []domain.Attachment{xbrl(1), pdf}})
	f := o.upgrade()
	if got := f.stored(n); got.Needs {
		t.Fatalf("a final message needs no action for its files yet: %+v", got)
	}
	if _, err := f.Restore(ctx, n, "test"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		plan, err := f.BeginDelivery(ctx, n)
		if err != nil || !strings.Contains(plan.Wait, "is held") || !strings.Contains(plan.Wait, "bijlage.pdf") {
			t.Fatalf("held: %+v %v", plan, err)
		}
	}
	lines, err := f.ReadLog(ctx, store.LogFilter{Message: n, Level: domain.LevelError})
	if err != nil || len(lines) != 1 || !strings.Contains(lines[0].Description, "KOERIER_BIJLAGEN=btw=yes") {
		t.Fatalf("one F line however often it is tried: %+v %v", lines, err)
	}
	if c := f.count(`SELECT count(*) FROM deliveries WHERE message_number = $1 AND attempt = 2`, n); c != 0 {
		t.Fatalf("no delivery was started: %d", c)
	}
	on := newStoreWith(t, o.url, testCatalog(t, "btw=yes"))
	if plan, err := on.BeginDelivery(ctx, n); err != nil || plan.Wait != "" || plan.Refused != "" || plan.Attempt != 2 {
		t.Fatalf("with the setting on it is delivered: %+v %v", plan, err)
	}

	q, err := on.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeVAT, Subject: "004000044B37", Period: "2026-Q3",
		Attachments: []domain.Attachment{xbrl(2), pdf}})
	if err != nil {
		t.Fatal(err)
	}
	if plan, err := f.BeginDelivery(ctx, q.Number); err != nil || plan.Wait != "" || plan.Refused != "" {
		t.Fatalf("a message queued while the type took further files goes as queued: %+v %v", plan, err)
	}
}
