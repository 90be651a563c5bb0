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
	"koerier/pipeline"
	"koerier/store"
)

func declarationState(t *testing.T, s *testenv.Stack, number int64) pipeline.State {
	t.Helper()
	v, err := s.Temporal.QueryWorkflow(context.Background(), pipeline.DeclarationID(number), "", pipeline.QueryState)
	if err != nil {
		t.Fatalf("query message %d: %v", number, err)
	}
	var st pipeline.State
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// timedSendReceive runs send/receive and says how long it took: a run that waits for a
// message that will not go waits the whole send-wait (30 s here) while holding the lock.
func timedSendReceive(t *testing.T) (pipeline.SendReceiveCounts, time.Duration) {
	t.Helper()
	start := time.Now()
	c := sendReceive(t)
	return c, time.Since(start)
}

// Issue 12, item 3: in an environment that processes by hand, `restore` on a rejection the
// environment has not processed yet no longer leaves the workflow waiting for process:
// the restore shows the environment the rejection and then the restore (rule 3), and the
// next send/receive sends the new attempt at once.
func TestRestoreInManualProcessEnvironment(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	mustCLI(t, "environments", "add", "manual")
	q := queue(t, "manual", "2021-11")
	if err := s.Sim.SetScenario(ak(q.Number), simulator.KoerierValidatieNietGelukt); err != nil {
		t.Fatal(err)
	}
	until(t, s, q.Number, domain.StatusRejected)
	testenv.Eventually(t, 20*time.Second, "workflow waits for process", func() (bool, string) {
		st := declarationState(t, s, q.Number)
		return st.Stage == pipeline.StageProcessing, st.Stage
	})
	if row := envView(t, "manual")[q.Number]; row.Status == "rejected" {
		t.Fatalf("the environment saw the rejection before process or restore: %+v", row)
	}
	if out := mustCLI(t, "restore", fmt.Sprint(q.Number)); !strings.Contains(out, "attempt 2") {
		t.Errorf("restore: %s", out)
	}
	if row := envView(t, "manual")[q.Number]; row.Status != "ready_to_resend" {
		t.Errorf("environment view after restore: %+v", row)
	}
	if !hasLine(logLines(t, "--message", fmt.Sprint(q.Number)), q.Number, "I", "processed by the restore: the environment now sees rejected") {
		t.Error("no line saying the restore showed the environment the rejection")
	}
	if out := mustCLI(t, "process"); !strings.Contains(out, "nothing to process") {
		t.Errorf("process after restore: %s", out)
	}
	c, took := timedSendReceive(t)
	t.Logf("send/receive after the restore: %s in %s", c, took.Round(time.Millisecond))
	if c.Sent != 1 || took > 15*time.Second {
		t.Fatalf("send/receive after restore: %+v in %s (it must send the restored message, not wait out the send-wait)", c, took)
	}
	until(t, s, q.Number, domain.StatusAccepted)
	mustCLI(t, "process", fmt.Sprint(q.Number))
	waitEnvStatus(t, "manual", q.Number, "accepted")
	second := s.Sim.Deliveries(domain.Aanleverkenmerk(domain.DefaultAanleverkenmerkPrefix, q.Number, 2))
	if first := s.Sim.Deliveries(ak(q.Number)); first.Accepted != 1 || second.Accepted != 1 || first.Duplicates+second.Duplicates != 0 {
		t.Errorf("deliveries: first %+v second %+v", first, second)
	}
}

// Issue 12, item 5: a message whose environment is gone is not delivered; send/receive
// does not wait for it, the service marks it needs-action by itself, and after
// `assign --resolve` the service holds it and it goes on to accepted with no
// environment told.
func TestRemovedEnvironmentWaitsForAnOperator(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	mustCLI(t, "environments", "add", "gone")
	q := queue(t, "gone", "2021-12")
	mustCLI(t, "environments", "remove", "gone")
	c, took := timedSendReceive(t)
	t.Logf("send/receive with the message of a removed environment: %s in %s", c, took.Round(time.Millisecond))
	if c.Sent != 0 || took > 15*time.Second {
		t.Fatalf("send/receive: %+v in %s (nothing may be sent, and the run must not wait for it)", c, took)
	}
	if d := s.Sim.Deliveries(ak(q.Number)); d.Accepted != 0 {
		t.Fatalf("delivered for a removed environment: %+v", d)
	}
	m, err := s.Store.Message(context.Background(), q.Number)
	if err != nil || !m.NeedsAction || !strings.Contains(m.NeedsActionReason, "starter assign") || m.Status != domain.StatusQueued {
		t.Fatalf("message of the removed environment: %+v %v", m, err)
	}
	mustCLI(t, "assign", fmt.Sprint(q.Number), "--resolve")
	until(t, s, q.Number, domain.StatusAccepted)
	m, _ = s.Store.Message(context.Background(), q.Number)
	if m.Environment == nil || *m.Environment != store.ServiceHolder {
		t.Errorf("holder after resolve: %+v", m)
	}
	testenv.Eventually(t, 20*time.Second, "processed under the service's holder", func() (bool, string) {
		m, _ := s.Store.Message(context.Background(), q.Number)
		return m.EnvStatus == domain.StatusAccepted, string(m.EnvStatus)
	})
	if d := s.Sim.Deliveries(ak(q.Number)); d.Accepted != 1 || d.Duplicates != 0 {
		t.Errorf("deliveries: %+v", d)
	}
}
