package e2e

import (
	"context"
	"encoding/json"
	"math"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"koerier/api"
	"koerier/internal/bench"
	"koerier/internal/service"
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
		res.DigipoortCallsPerDecl < 1 || res.HistoryEventsPerDecl < 10 || res.ActivitiesPerDecl < 1 || res.SignalsPerDecl < 1 ||
		res.WorkerPeakRSSMiB <= 0 || res.DBBytesPer1000 <= 0 || res.FirstSendReceiveS <= 0 || res.FirstSendReceiveMessages != 40 {
		t.Fatalf("a figure is missing: %+v", res)
	}
	// The least floor and the cost figures, counted from real histories: a least-floor
	// workflow bills exactly its start, its activity and its signal; the floor its start
	// and the activities and signals it was shaped with; a declaration at least as much
	// as its activities and signals, plus its share of the send/receive runs.
	if res.MinFloorPerS <= 0 || res.RatioToMinFloor <= 0 || res.MinFloorS <= 0 || res.EventsPerDecl < 10 ||
		res.EventsPerDecl > res.HistoryEventsPerDecl || res.ActionsSample != 40 || res.SendReceiveActionsPerDecl <= 0 ||
		res.ActionsPerDecl < 1+res.ActivitiesPerDecl+res.SignalsPerDecl+res.SendReceiveActionsPerDecl-0.001 {
		t.Fatalf("a cost figure is missing or wrong: %+v", res)
	}
	if res.MinFloorActionsPerWorkflow != 3 || res.MinFloorEventsPerWorkflow <= 0 || res.MinFloorEventsPerWorkflow >= res.FloorEventsPerWorkflow {
		t.Errorf("least floor: %.2f actions, %.1f events per workflow (floor %.1f events)", res.MinFloorActionsPerWorkflow,
			res.MinFloorEventsPerWorkflow, res.FloorEventsPerWorkflow)
	}
	if want := 1 + math.Round(res.ActivitiesPerDecl) + math.Round(res.SignalsPerDecl); res.FloorActionsPerWorkflow != want {
		t.Errorf("floor: %.2f actions per workflow, want %.0f", res.FloorActionsPerWorkflow, want)
	}
	b, _ := json.Marshal(res)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"declarations", "throughput_per_s", "floor_per_s", "ratio_to_floor", "p50_s", "p99_s", "deliveries", "duplicates", "not_final"} {
		if _, ok := v[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, b)
		}
	}
	for _, key := range []string{
		"min_floor_per_s", "ratio_to_min_floor", "events_per_declaration", "actions_per_declaration", "floor_events_per_workflow",
		"floor_actions_per_workflow", "min_floor_events_per_workflow", "min_floor_actions_per_workflow", "send_receive_run_s",
	} {
		if f, ok := v[key].(float64); !ok || f <= 0 {
			t.Errorf("JSON lacks %q or it is not positive: %s", key, b)
		}
	}
	t.Logf("bench on 40: %s", b)
}

// API mode queues half through the real API handler (over HTTP) and half the direct
// way, and receives every webhook the processing sends, signed with each environment's
// secret; its figures are printed by `starter bench --api`, not judged here.
func TestBenchmarkAPIModeRunsAndReports(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"KOERIER_SEND_WAIT": "20s"}})
	srv := httptest.NewServer((&api.Server{Store: s.Store, Workflows: service.Starter(s.Config, s.Temporal), Catalog: s.Config.Catalog}).Handler())
	defer srv.Close()
	res, err := bench.Run(context.Background(), s.Config, s.Store, s.Temporal, bench.Options{N: 40, Envs: 4, SimControlURL: s.Sim.ControlURL(),
		NoFloor: true, APIURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	a := res.API
	if a == nil || res.NotFinal != 0 || res.Duplicates != 0 || res.Deliveries != 40 {
		t.Fatalf("result: %+v", res)
	}
	if a.Requests != 20 || a.Direct != 20 || a.RequestsPerS <= 0 || a.DirectPerS <= 0 || a.RatioDirect <= 0 || a.PostP50S <= 0 ||
		a.PostP99S < a.PostP50S || a.DirectP99S < a.DirectP50S || a.Concurrency != 16 {
		t.Fatalf("a queueing figure is missing: %+v", a)
	}
	// Every declaration is accepted and processed at once (auto-process): at least one
	// event each, every one signed right and none lost.
	if a.WebhookCount < 40 || a.WebhookNotArrived != 0 || a.WebhookBadSignatures != 0 || a.WebhookP50S <= 0 || a.WebhookP99S < a.WebhookP50S {
		t.Fatalf("webhooks: %+v", a)
	}
	b, _ := json.Marshal(res)
	for _, key := range []string{`"api"`, `"requests_per_s"`, `"post_p99_s"`, `"direct_per_s"`, `"ratio_to_direct"`, `"webhook_p99_s"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
	t.Logf("bench in API mode on 40: %s", b)
}

// Issue 14, "Done when": the benchmark runs a mix of declarations and payment orders.
// The orders are queued among the declarations, uploaded to each environment's bank
// (the simulator, over real SFTP) by its bank send/receive, and all end final; the
// bank received each once. The declarations' figures count the declarations alone.
func TestBenchmarkMixesDeclarationsAndPaymentOrders(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Bank: true, Env: map[string]string{"KOERIER_SEND_WAIT": "20s"}})
	res, err := bench.Run(context.Background(), s.Config, s.Store, s.Temporal, bench.Options{N: 20, Envs: 4, SimControlURL: s.Sim.ControlURL(),
		NoFloor: true, Payments: 10, BankControlURL: s.Bank.ControlURL(), BankAddr: s.Bank.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if res.NotFinal != 0 || res.Duplicates != 0 || res.Deliveries != 20 || res.ActionsSample != 20 || res.P50S <= 0 {
		t.Fatalf("declarations: %+v", res)
	}
	if res.Payments != 10 || res.PaymentsFinal != 10 || res.PaymentDuplicates != 0 || res.PaymentsPerS <= 0 || res.PaymentsS <= 0 ||
		res.PaymentP50S <= 0 || res.PaymentP99S < res.PaymentP50S {
		t.Fatalf("payment orders: %+v", res)
	}
	// What the store and the bank hold, apart from the benchmark's own count.
	var accepted int
	if err := s.Store.DB().Get(&accepted, `SELECT count(*) FROM messages WHERE message_type = 'payment' AND status = 'accepted'`); err != nil {
		t.Fatal(err)
	}
	if accepted != 10 {
		t.Errorf("%d payment orders accepted, want 10", accepted)
	}
	// Queued among the declarations, not after them: message numbers follow the order
	// of queueing.
	var span struct {
		FirstPayment, LastPayment, FirstDecl, LastDecl int64
	}
	if err := s.Store.DB().QueryRow(`SELECT min(number) FILTER (WHERE message_type = 'payment'), max(number) FILTER (WHERE message_type = 'payment'),
		min(number) FILTER (WHERE message_type <> 'payment'), max(number) FILTER (WHERE message_type <> 'payment') FROM messages WHERE direction = 'out'`).
		Scan(&span.FirstPayment, &span.LastPayment, &span.FirstDecl, &span.LastDecl); err != nil {
		t.Fatal(err)
	}
	if span.FirstPayment > span.LastDecl || span.LastPayment < span.FirstDecl {
		t.Errorf("the payment orders were not queued among the declarations: %+v", span)
	}
	files := 0
	for _, u := range s.Bank.Users() {
		for _, f := range s.Bank.Files(u.User).Files {
			files++
			if f.TimesSeen != 1 {
				t.Errorf("the bank received %s of %s %d times", f.MsgID, u.User, f.TimesSeen)
			}
		}
	}
	if users := len(s.Bank.Users()); files != 10 || users != 4 {
		t.Errorf("the bank has %d files from %d users, want 10 from 4", files, users)
	}
	b, _ := json.Marshal(res)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"payments", "payments_final", "payments_per_s", "payment_p50_s", "payment_p99_s", "payment_duplicates", "declarations",
		"throughput_per_s", "p50_s", "not_final"} {
		if _, ok := v[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, b)
		}
	}
	t.Logf("bench on 20 declarations and 10 payment orders: %s", b)
}
