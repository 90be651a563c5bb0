package e2e

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/internal/testenv"
)

// scrape reads one sample (name with its labels, as the exposition writes it) from the
// worker's /metrics; -1 when it is absent.
func scrape(t *testing.T, url, sample string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, value, ok := strings.Cut(line, " "); ok && name == sample {
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return -1
}

// Issue 15, "measurable in production": the worker's /metrics, scraped during a run,
// moves with what the pipeline does — a due message, a delivery to Digipoort, the SOAP
// calls it made, an accepted return no longer in flight — and carries Temporal's own.
func TestMetricsMoveDuringARun(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	srv := httptest.NewServer(s.Worker.Metrics.Handler(nil))
	t.Cleanup(srv.Close)
	url := srv.URL + "/metrics"
	sent := `koerier_deliveries_total{channel="digipoort",outcome="sent"}`
	if v := scrape(t, url, sent); v != 0 {
		t.Fatalf("%s before any delivery: %v", sent, v)
	}
	mustCLI(t, "environments", "add", "metrics")
	q := queue(t, "metrics", "2023-01")
	testenv.Eventually(t, 20*time.Second, "the queued message counted due", func() (bool, string) {
		v := scrape(t, url, "koerier_messages_due")
		return v == 1, strconv.FormatFloat(v, 'f', -1, 64)
	})
	until(t, s, q.Number, domain.StatusAccepted)
	if v := scrape(t, url, sent); v != 1 {
		t.Errorf("%s after one delivery: %v", sent, v)
	}
	if v := scrape(t, url, `koerier_digipoort_call_duration_seconds_count{operation="aanleveren"}`); v < 1 {
		t.Errorf("the aanleveren call was not timed: %v", v)
	}
	if v := scrape(t, url, "koerier_messages_due"); v != 0 {
		t.Errorf("koerier_messages_due after the delivery: %v", v)
	}
	if v := scrape(t, url, "koerier_messages_in_flight"); v != 0 {
		t.Errorf("koerier_messages_in_flight after acceptance: %v", v)
	}
	if v := scrape(t, url, "koerier_store_up"); v != 1 {
		t.Errorf("koerier_store_up: %v", v)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "temporal_") {
		t.Error("the Temporal SDK's own metrics are not served")
	}
}
