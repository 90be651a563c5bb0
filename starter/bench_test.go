package main

import (
	"strings"
	"testing"

	"koerier/internal/bench"
)

// The human table carries the least floor, the ratio to it and the per-declaration
// events and actions, and leaves out both floors when they were not measured.
func TestBenchSummaryShowsTheFloorsAndActions(t *testing.T) {
	res := bench.Result{Declarations: 1000, Environments: 10, ThroughputPerS: 14.7, FloorPerS: 26.4, RatioToFloor: 0.56,
		FloorEventsPerWorkflow: 37, FloorActionsPerWorkflow: 8, MinFloorPerS: 49, RatioToMinFloor: 0.3, MinFloorEventsPerWorkflow: 14,
		MinFloorActionsPerWorkflow: 3, EventsPerDecl: 47, HistoryEventsPerDecl: 47.4, ActionsPerDecl: 12.3, SendReceiveActionsPerDecl: 0.25,
		ActionsSample: 50, ActionsByKind: map[string]float64{"activities": 5, "signals": 2, "starts": 1, "upserts": 4, "timers": 0}}
	var out strings.Builder
	if err := printBenchSummary(&out, res, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"49.0 workflows/s; Koerier runs at 0.30 of it (14 events, 3.0 actions each)",
		"26.4 workflows/s; Koerier runs at 0.56 of the floor (37 events, 8.0 actions each)",
		"47.0 in its workflow, 47.4 with send/receive's share",
		"12.3, of which 0.25 send/receive's share (from 50 declarations' histories)",
		"5.0 activities, 4.0 upserts, 2.0 signals, 1.0 starts\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := printBenchSummary(&out, res, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "floor") || !strings.Contains(out.String(), "Temporal actions per declaration") {
		t.Errorf("without floors:\n%s", out.String())
	}
}

// A mixed run prints the payment orders' rate, latencies and duplicates; a run without
// them prints no payment rows.
func TestBenchSummaryShowsThePaymentOrders(t *testing.T) {
	res := bench.Result{Declarations: 20, Environments: 4, Payments: 10, PaymentsFinal: 9, PaymentsPerS: 1.25, PaymentsS: 7.2, PaymentP50S: 3.4,
		PaymentP99S: 6.9, PaymentDuplicates: 1}
	var out strings.Builder
	if err := printBenchSummary(&out, res, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"1.2 orders/s (9 of 10 final in 7 s, from the first queued to the last final)",
		"payment order queue → final p50 / p99",
		"3.4 / 6.9 s",
		"received more than once",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "received more than once") && !strings.HasSuffix(strings.TrimSpace(line), " 1") {
			t.Errorf("duplicates row: %q, want 1", line)
		}
	}
	res.Payments = 0
	out.Reset()
	if err := printBenchSummary(&out, res, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "payment") {
		t.Errorf("a run without payment orders prints them:\n%s", out.String())
	}
}
