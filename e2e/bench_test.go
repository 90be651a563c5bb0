package e2e

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"koerier/internal/bench"
	"koerier/internal/testenv"
)

// The benchmark works end to end on a small batch and reports every figure the issue
// asks for; its numbers are printed by `starter bench`, not judged here.
func TestBenchmarkRunsAndReports(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"KOERIER_SEND_WAIT": "20s"}})
	res, err := bench.Run(
		context.Background(), s.Config, s.Store, s.Temporal, bench.Options{N: 40, Envs: 4, SimControlURL: s.Sim.ControlURL(), WorkerPID: os.Getpid()},
	)
	if err != nil {
		t.Fatal(err)
	}
	if res.NotFinal != 0 || res.Duplicates != 0 || res.Deliveries != 40 {
		t.Fatalf("result: %+v", res)
	}
	if res.ThroughputPerS <= 0 || res.FloorPerS <= 0 || res.RatioToFloor <= 0 || res.P50S <= 0 || res.P99S < res.P50S ||
		res.DigipoortCallsPerDecl < 1 || res.HistoryEventsPerDecl < 10 || res.ActivitiesPerDecl < 2 || res.SignalsPerDecl < 1 ||
		res.WorkerPeakRSSMiB <= 0 || res.DBBytesPer1000 <= 0 || res.FirstSendReceiveS <= 0 || res.FirstSendReceiveMessages != 40 {
		t.Fatalf("a figure is missing: %+v", res)
	}
	b, _ := json.Marshal(res)
	for _, key := range []string{"declarations", "throughput_per_s", "floor_per_s", "ratio_to_floor", "p50_s", "p99_s", "deliveries", "duplicates", "not_final"} {
		if !strings.Contains(string(b), `"`+key+`"`) {
			t.Errorf("JSON lacks %q: %s", key, b)
		}
	}
	t.Logf("bench on 40: %s", b)
}
