package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"koerier/internal/metrics"
)

// scrape GETs /metrics from h as Prometheus would and returns the text.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v\n%s", resp.StatusCode, err, body)
	}
	return string(body)
}

func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, "\n"+l+"\n") {
			t.Errorf("the scrape lacks the line %q", l)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
}

// What the Temporal SDK records through the handler is scraped with its tags as labels:
// counters as _total, gauges as they are, timers as histograms in seconds; the same
// name with another tag set is a series of its own, and names are made valid.
func TestTemporalHandlerServesTheSDKsMetrics(t *testing.T) {
	m := metrics.New()
	h := m.Temporal().WithTags(map[string]string{"namespace": "default", "task_queue": "koerier"})
	h.Counter("temporal_request").Inc(2)
	h.Counter("temporal_request").Inc(1)
	h.WithTags(map[string]string{"operation": "PollActivityTaskQueue"}).Counter("temporal_request").Inc(5)
	h.WithTags(map[string]string{"task_queue": "other"}).Gauge("temporal_num_pollers").Update(3)
	h.Timer("temporal_activity_execution_latency").Record(1500 * time.Millisecond)
	h.Counter("temporal.odd-name").Inc(1)
	h.Gauge("temporal_request_total").Update(9) // a counter's name taken as a gauge: dropped, not a broken scrape

	text := scrape(t, m.Handler(nil))
	wantLines(t, text,
		`temporal_request_total{namespace="default",task_queue="koerier"} 3`,
		`temporal_request_total{namespace="default",operation="PollActivityTaskQueue",task_queue="koerier"} 5`,
		`temporal_num_pollers{namespace="default",task_queue="other"} 3`,
		`temporal_activity_execution_latency_seconds_bucket{namespace="default",task_queue="koerier",le="1"} 0`,
		`temporal_activity_execution_latency_seconds_bucket{namespace="default",task_queue="koerier",le="2.5"} 1`,
		`temporal_activity_execution_latency_seconds_sum{namespace="default",task_queue="koerier"} 1.5`,
		`temporal_odd_name_total{namespace="default",task_queue="koerier"} 1`,
		"# TYPE temporal_request_total counter",
		"# TYPE temporal_num_pollers gauge",
		"# TYPE temporal_activity_execution_latency_seconds histogram",
	)
	if strings.Contains(text, "temporal_request_total 9") || strings.Contains(text, `temporal_request_total{namespace="default",task_queue="koerier"} 9`) {
		t.Errorf("the gauge under a counter's name was served:\n%s", text)
	}
}

// Koerier's counters start at zero for every channel and outcome, and count what they
// are told; a Digipoort call is timed, and a failed one counted as an error.
func TestKoerierCounters(t *testing.T) {
	m := metrics.New()
	text := scrape(t, m.Handler(nil))
	wantLines(t, text,
		`koerier_deliveries_total{channel="digipoort",outcome="sent"} 0`,
		`koerier_deliveries_total{channel="email",outcome="error"} 0`,
		`koerier_uncertain_adopted_total{channel="email"} 0`,
	)
	m.Delivery("digipoort", "sent")
	m.Delivery("digipoort", "sent")
	m.Delivery("email", "send_failed")
	m.UncertainLookedUp("digipoort")
	m.UncertainAdopted("digipoort")
	m.ObserveDigipoort("aanleveren", 300*time.Millisecond, nil)
	m.ObserveDigipoort("aanleveren", 3*time.Second, io.ErrUnexpectedEOF)
	text = scrape(t, m.Handler(nil))
	wantLines(t, text,
		`koerier_deliveries_total{channel="digipoort",outcome="sent"} 2`,
		`koerier_deliveries_total{channel="email",outcome="send_failed"} 1`,
		`koerier_uncertain_lookups_total{channel="digipoort"} 1`,
		`koerier_uncertain_adopted_total{channel="digipoort"} 1`,
		`koerier_digipoort_call_duration_seconds_count{operation="aanleveren"} 2`,
		`koerier_digipoort_call_duration_seconds_bucket{operation="aanleveren",le="0.5"} 1`,
		`koerier_digipoort_call_errors_total{operation="aanleveren"} 1`,
	)
	for _, family := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(text, "\n"+family+" ") {
			t.Errorf("the scrape lacks %s", family)
		}
	}
}
