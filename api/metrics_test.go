package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"koerier/internal/metrics"
)

// GET /metrics serves the handler koerier-api wires, without a token (Prometheus has
// none); another method is refused like everywhere else, and an API without metrics
// has no such path.
func TestMetricsServedWithoutAToken(t *testing.T) {
	m := metrics.New()
	m.Temporal().WithTags(map[string]string{"operation": "StartWorkflowExecution"}).Counter("temporal_request").Inc(1)
	hs := httptest.NewServer((&Server{Metrics: m.Handler(nil)}).Handler())
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "\n"+`temporal_request_total{operation="StartWorkflowExecution"} 1`+"\n") ||
		!strings.Contains(string(body), "\ngo_goroutines ") {
		t.Fatalf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}
	resp, err = http.Post(hs.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d, want 405", resp.StatusCode)
	}

	without := httptest.NewServer((&Server{}).Handler())
	defer without.Close()
	resp, err = http.Get(without.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics without metrics configured: %d, want 404", resp.StatusCode)
	}
}
