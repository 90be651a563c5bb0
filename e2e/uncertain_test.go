package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"koerier/digipoort/simulator"
	"koerier/domain"
	"koerier/internal/testenv"
)

// Against Digipoort as it really behaves — pickups without aanleverkenmerk, a repeated
// delivery a second process, flows that take a while — a delivery whose answer is lost
// is found by the look-up (the only process of its berichtsoort and subject since the
// try that Koerier does not know) and adopted, never filed again.
func TestLostAnswerIsAdoptedAgainstRealisticDigipoort(t *testing.T) {
	s, q := lostAnswer(t, simulator.Mode{Realistic: true, Scale: 0.001}, "2022-06")
	until(t, s, q.Number, domain.StatusAccepted)
	d := s.Sim.Deliveries(ak(q.Number))
	if d.Accepted != 1 || d.Repeated != 0 {
		t.Fatalf("filed as %d processes (%d repeated): %+v", d.Accepted, d.Repeated, d)
	}
	lines := logLines(t, "--step", "send")
	if !hasLine(lines, q.Number, "F", "is not known") {
		t.Error("the lost answer wrote no line")
	}
	if !hasLine(lines, q.Number, "I", "is the only process of this berichtsoort and belanghebbende") {
		t.Error("the adoption is not logged with its reason")
	}
}

// When the look-up cannot tell (Digipoort shows nothing), Koerier does not deliver
// again on its own: the message needs action and says what to do; the operator's
// explicit decision delivers it.
func TestUndecidableDeliveryWaitsForTheOperator(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	mustCLI(t, "environments", "add", "acme", "--auto-process")
	q := queue(t, "acme", "2022-07")
	// Digipoort answers HTTP 500 without a fault of its own: Koerier cannot know
	// whether the delivery arrived (here it did not).
	if err := s.Sim.SetFaults("aanleveren", simulator.FaultConfig{HTTP500: &simulator.Rule{Count: 1}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "the message needs an operator", func() (bool, string) {
		sendReceive(t)
		m, err := s.Store.Message(context.Background(), q.Number)
		if err != nil {
			return false, err.Error()
		}
		return m.NeedsAction && strings.Contains(m.NeedsActionReason, "starter delivery redeliver"), fmt.Sprint(m.Status, " ", m.NeedsActionReason)
	})
	if d := s.Sim.Deliveries(ak(q.Number)); d.Accepted != 0 {
		t.Fatalf("delivered again on its own: %+v", d)
	}
	mustCLI(t, "delivery", "redeliver", fmt.Sprint(q.Number))
	until(t, s, q.Number, domain.StatusAccepted)
	if d := s.Sim.Deliveries(ak(q.Number)); d.Accepted != 1 || d.Duplicates != 0 {
		t.Fatalf("after the decision: %+v", d)
	}
	if !hasLine(logLines(t, "--step", "send"), q.Number, "I", "decided that the delivery") {
		t.Error("the decision is not logged")
	}
	if m, _ := s.Store.Message(context.Background(), q.Number); m.NeedsAction {
		t.Errorf("still needs action after delivery: %q", m.NeedsActionReason)
	}
}

// lostAnswer is a stack whose Digipoort accepts the next delivery and then does not
// answer it (the client gives up after 2 s), with environment acme and one VAT return
// for period queued.
func lostAnswer(t *testing.T, mode simulator.Mode, period string) (*testenv.Stack, queued) {
	t.Helper()
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"KOERIER_DIGIPOORT_TIMEOUT": "2s"}})
	s.Worker.Stop()
	s.Digipoort.HTTPTimeout = 2 * time.Second
	s.StartWorker()
	if err := s.Sim.SetMode(mode); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "environments", "add", "acme", "--auto-process")
	q := queue(t, "acme", period)
	if err := s.Sim.SetFaults("aanleveren", simulator.FaultConfig{Timeout: &simulator.Rule{Count: 1, Delay: simulator.Duration(5 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	return s, q
}

// Two versions are never in flight at once: version 1's answer is lost and its
// look-up takes a while; version 2, queued meanwhile, waits (it does not go out
// first), version 1 is found and kept — it did reach the authority — and version 2
// follows it.
func TestTwoVersionsNeverInFlightTogether(t *testing.T) {
	s, v1 := lostAnswer(t, simulator.Mode{}, "2022-08")
	// The look-up cannot ask Digipoort for a while.
	if err := s.Sim.SetFaults("getProcessen", simulator.FaultConfig{HTTP500: &simulator.Rule{Count: 2}}); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "send", fmt.Sprint(v1.Number))
	testenv.Eventually(t, 30*time.Second, "version 1's answer lost", func() (bool, string) {
		return hasLine(logLines(t, "--step", "send"), v1.Number, "F", "is not known"), ""
	})
	v2 := queue(t, "acme", "2022-08")
	until(t, s, v2.Number, domain.StatusAccepted)

	d1, d2 := s.Sim.Deliveries(ak(v1.Number)), s.Sim.Deliveries(ak(v2.Number))
	if d1.Accepted != 1 || d2.Accepted != 1 || d1.Duplicates+d2.Duplicates != 0 {
		t.Fatalf("version 1 %+v, version 2 %+v: want each delivered once", d1, d2)
	}
	if !d1.Processes[0].Aangeleverd.Before(d2.Processes[0].Aangeleverd) {
		t.Errorf("version 2 reached Digipoort at %s, before version 1 at %s", d2.Processes[0].Aangeleverd, d1.Processes[0].Aangeleverd)
	}
	if m, _ := s.Store.Message(context.Background(), v1.Number); m.Status != domain.StatusAccepted || !m.DoNotSend {
		t.Errorf("version 1 %s (do-not-send %v): it reached the authority and must show so", m.Status, m.DoNotSend)
	}
	if !hasLine(logLines(t, "--step", "send"), v2.Number, "I", "waits until that one is resolved") {
		t.Error("version 2's wait is not logged")
	}
}
