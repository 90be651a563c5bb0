package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"koerier/domain"
	"koerier/internal/testdb"
	"koerier/store"
)

var ctx = context.Background()

type fixture struct {
	*store.Store
	url string
	t   *testing.T
}

func newStore(t *testing.T) *fixture {
	t.Helper()
	cat, err := domain.DefaultCatalog().WithBerichtsoorten("ib=IB_TEST,vpb=VPB_TEST,kvk=KVK_TEST")
	if err != nil {
		t.Fatal(err)
	}
	return newStoreWith(t, testdb.New(t), cat)
}

// newStoreWith opens the store on url with a catalog of the test's own, as the
// service does with its settings.
func newStoreWith(t *testing.T, url string, cat domain.Catalog) *fixture {
	t.Helper()
	s, err := store.Open(ctx, url, store.Options{Migrate: true, Catalog: &cat, MaxConns: 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &fixture{Store: s, url: url, t: t}
}

func (f *fixture) env(name string) store.Environment {
	f.t.Helper()
	e, err := f.AddEnvironment(ctx, store.Environment{Name: name})
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

func xbrl(n int) domain.Attachment {
	return domain.Attachment{FileName: "aangifte.xbrl", MimeType: "application/xml",
		Content: []byte(fmt.Sprintf(`<?xml version="1.0"?><xbrli:xbrl xmlns:xbrli="http://www.xbrl.org/2003/instance"><n>%d</n></xbrli:xbrl>`, n))}
}

func (f *fixture) queue(env string, typ domain.MessageType, subject, period string) store.Queued {
	f.t.Helper()
	q, err := f.Queue(ctx, store.QueueRequest{Environment: env, Type: typ, Subject: vat(typ, subject), Period: period,
		Attachments: []domain.Attachment{xbrl(1)}})
	if err != nil {
		f.t.Fatal(err)
	}
	return q
}

func (f *fixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.DB().GetContext(ctx, &n, query, args...); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (f *fixture) exec(query string, args ...any) {
	f.t.Helper()
	testdb.MustExec(f.t, f.url, query, args...)
}

// deliver walks a queued message through BeginDelivery and RecordDelivered.
func (f *fixture) deliver(number int64, kenmerk string) {
	f.t.Helper()
	plan, err := f.BeginDelivery(ctx, number)
	if err != nil || plan.Refused != "" {
		f.t.Fatalf("begin delivery %d: %v %s", number, err, plan.Refused)
	}
	if err := f.RecordDelivered(ctx, number, plan.Attempt, kenmerk, ""); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) status(number int64) domain.Status {
	f.t.Helper()
	m, err := f.Message(ctx, number)
	if err != nil {
		f.t.Fatal(err)
	}
	return m.Status
}

// vat turns the short subjects tests name VAT declarations by ("1", "2") into
// omzetbelastingnummers (000000001B01), the form store.Queue requires of VAT types;
// other subjects are used as given.
func vat(typ domain.MessageType, subject string) string {
	spec, err := domain.DefaultCatalog().Lookup(typ)
	if err != nil || spec.Subject != domain.SubjectVATNumber || subject == "" || len(subject) > 8 || strings.Trim(subject, "0123456789") != "" {
		return subject
	}
	return strings.Repeat("0", 9-len(subject)) + subject + "B01"
}

// explainer returns the plan Postgres would use for a query, on a connection of its own
// with sequential scans off: the test tables are tiny, and without that the planner
// rightly prefers a sequential scan, so a test would say nothing about a table of millions.
func (f *fixture) explainer() func(q string, args ...any) string {
	f.t.Helper()
	conn, err := f.DB().Connx(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
		f.t.Fatal(err)
	}
	return func(q string, args ...any) string {
		f.t.Helper()
		var lines []string
		if err := conn.SelectContext(ctx, &lines, `EXPLAIN `+q, args...); err != nil {
			f.t.Fatalf("explain %s: %v", q, err)
		}
		return strings.Join(lines, "\n")
	}
}

// queueSent queues n messages of subject 1 in periods 2025-01… and ages them days into
// status sent, eligible for clean-up; it returns their numbers in order.
func (f *fixture) queueSent(n, days int) []int64 {
	f.t.Helper()
	numbers := make([]int64, n)
	for i := range n {
		q := f.queue("acme", domain.TypeVAT, "1", fmt.Sprintf("2025-%02d", i+1))
		f.age(q.Number, days, domain.StatusSent)
		numbers[i] = q.Number
	}
	return numbers
}
