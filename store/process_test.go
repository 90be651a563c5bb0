package store_test

import (
	"testing"

	"koerier/domain"
)

// Process shows the environment its message's status; report tells it once.
func TestProcessAndReport(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	f.env("beta")
	a := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	b := f.queue("beta", domain.TypeVAT, "1", "2026-10")
	for n, k := range map[int64]string{a.Number: "KA", b.Number: "KB"} {
		f.deliver(n, k)
		if _, err := f.ApplyReplies(ctx, flow(k, "105", "100", "500")); err != nil {
			t.Fatal(err)
		}
	}
	only, err := f.Unprocessed(ctx, "acme", 10)
	if err != nil || len(only) != 1 || only[0] != a.Number {
		t.Fatalf("unprocessed of acme: %v %v", only, err)
	}
	res, err := f.Process(ctx, a.Number)
	if err != nil || !res.Changed || res.Status != domain.StatusAccepted {
		t.Fatalf("process: %+v %v", res, err)
	}
	if res, _ := f.Process(ctx, a.Number); res.Changed {
		t.Error("processing twice must change nothing")
	}
	view, _ := f.EnvironmentView(ctx, "acme", 0)
	if view[0].Status != domain.StatusAccepted {
		t.Errorf("environment view: %+v", view[0])
	}
	for i := 0; i < 2; i++ {
		if st, err := f.Report(ctx, a.Number); err != nil || st != domain.StatusAccepted {
			t.Fatalf("report: %s %v", st, err)
		}
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE step = 'report' AND message_number = $1`, a.Number); n != 1 {
		t.Errorf("%d report lines, want 1", n)
	}
	m, _ := f.Message(ctx, a.Number)
	if !m.Handled() {
		t.Errorf("processed and reported accepted message must count as handled: %+v", m)
	}
}
