package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/internal/metrics"
	"koerier/internal/service"
	"koerier/internal/testdb"
	"koerier/internal/testenv"
	"koerier/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var vatReturn = domain.Attachment{FileName: "aangifte.xbrl", MimeType: "application/xml",
	Content: []byte(`<?xml version="1.0"?><xbrli:xbrl xmlns:xbrli="http://www.xbrl.org/2003/instance"><n>1</n></xbrli:xbrl>`)}

// The backlog gauges are read from Postgres at each scrape: they follow the rows, and a
// database that cannot answer costs those gauges (koerier_store_up 0), not the scrape.
func TestBacklogGaugesFollowPostgres(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, testdb.New(t), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddEnvironment(ctx, store.Environment{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	m.WatchStore(st, time.Second, testenv.Quiet())
	wantLines(t, scrape(t, m.Handler(nil)), "koerier_store_up 1", "koerier_messages_due 0", "koerier_messages_needs_action 0")

	var numbers []int64
	for _, subject := range []string{"001000044B37", "001000045B37"} {
		q, err := st.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeVAT, Subject: subject, Period: "2026-01",
			Attachments: []domain.Attachment{vatReturn}})
		if err != nil {
			t.Fatal(err)
		}
		numbers = append(numbers, q.Number)
	}
	if err := st.MarkNeedsAction(ctx, numbers[0], "look at it", "test"); err != nil {
		t.Fatal(err)
	}
	wantLines(t, scrape(t, m.Handler(nil)), "koerier_store_up 1", "koerier_messages_due 2", "koerier_messages_needs_action 1",
		"koerier_messages_in_flight 0", "koerier_onb_open 0", "koerier_webhook_events_pending 0", "koerier_webhook_events_failed 0")

	st.Close()
	text := scrape(t, m.Handler(nil))
	wantLines(t, text, "koerier_store_up 0", `koerier_deliveries_total{channel="digipoort",outcome="sent"} 0`)
	if strings.Contains(text, "koerier_messages_due") {
		t.Errorf("a gauge the database did not answer for is served:\n%s", text)
	}
}

// The worker as the service assembles it, scraped over HTTP the way worker/main.go
// serves it, after it delivered a declaration to the Digipoort simulator: the delivery,
// the SOAP call, the Temporal SDK's own metrics, the backlog and the certificates are
// all there. A second listener on the same address is refused with what to do.
func TestWorkerScrapeAfterADelivery(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	ctx := context.Background()
	if _, err := s.Store.AddEnvironment(ctx, store.Environment{Name: "acme", AutoSend: true}); err != nil {
		t.Fatal(err)
	}
	q, err := s.Store.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeVAT, Subject: "001000044B37", Period: "2026-01",
		Attachments: []domain.Attachment{vatReturn}})
	if err != nil {
		t.Fatal(err)
	}
	if err := service.Starter(s.Config, s.Temporal).Start(ctx, q.Declaration()); err != nil {
		t.Fatal(err)
	}

	ln, err := metrics.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- metrics.Serve(sctx, ln, s.Worker.Metrics.Handler(testenv.Quiet())) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	if _, err := metrics.Listen(ln.Addr().String()); err == nil || !strings.Contains(err.Error(), "KOERIER_METRICS_ADDR") {
		t.Errorf("a port already taken: %v; want an error that names KOERIER_METRICS_ADDR", err)
	}

	get := func() string {
		resp, err := http.Get(fmt.Sprintf("http://%s/metrics", ln.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("scrape: %d %v", resp.StatusCode, err)
		}
		return string(b)
	}
	sent := `koerier_deliveries_total{channel="digipoort",outcome="sent"} 1`
	var text string
	// The delivery is counted when it is decided; the SDK times the activity when it has
	// returned (DeliverAndProcess processes after delivering), a moment later.
	testenv.Eventually(t, 30*time.Second, "the delivery and its activity in the scrape", func() (bool, string) {
		text = get()
		return strings.Contains(text, "\n"+sent+"\n") && strings.Contains(text, "\ntemporal_activity_execution_latency_seconds_bucket{"),
			"no " + sent + " or no activity latency yet"
	})
	wantLines(t, text,
		`koerier_store_up 1`,
		`koerier_uncertain_lookups_total{channel="digipoort"} 0`,
		`koerier_deliveries_total{channel="digipoort",outcome="error"} 0`,
	)
	for _, prefix := range []string{
		`koerier_digipoort_call_duration_seconds_count{operation="aanleveren"} `,
		`koerier_certificate_days_left{role="client",`,
		`koerier_certificate_days_left{role="response-signing",`,
		`temporal_request_total{`,
		`temporal_activity_execution_latency_seconds_bucket{`,
		`koerier_messages_in_flight `,
		`go_goroutines `,
	} {
		if !strings.Contains(text, "\n"+prefix) {
			t.Errorf("the scrape lacks %s…", prefix)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
}
