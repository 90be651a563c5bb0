package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enums "go.temporal.io/api/enums/v1"

	"koerier/digipoort"
	"koerier/digipoort/simulator"
	"koerier/domain"
	"koerier/internal/service"
	"koerier/internal/testenv"
	"koerier/pipeline"
	"koerier/store"
)

// Issue 12, item 4 through the Web UI: "Herstellen berichtstatus" on a do-not-send
// version whose newer version no longer exists clears the flag, and the message is sent
// once. The newer version is removed the one way the service removes a message:
// clean-up, after it aged past the retention (aged by SQL, as the clean-up test does).
// Where the newer version was refused by Digipoort it never stood at the authority, and
// the older one may go; where it was accepted, the older one stays replaced (rule 3).
func TestDoNotSendRestoredByTheWebUISignal(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	ctx := context.Background()
	mustCLI(t, "environments", "add", "manual")

	// Replaced by an accepted version that clean-up removed: refused.
	a1 := queue(t, "manual", "2022-04")
	a2 := queue(t, "manual", "2022-04")
	until(t, s, a2.Number, domain.StatusAccepted)
	s.Store.DB().MustExec(`UPDATE messages SET last_status_change = now() - interval '400 days' WHERE number = $1`, a2.Number)
	if out, err := cli(t, "cleanup", "--confirm", "--fiscal", fmt.Sprint(a2.Number)); err != nil || !strings.Contains(out, "removed 1 message") {
		t.Fatalf("clean-up of the accepted version 2: %v %s", err, out)
	}
	if out, err := cli(t, "restore", fmt.Sprint(a1.Number)); err == nil || !strings.Contains(out, "reached the authority before clean-up removed it") {
		t.Fatalf("restore of a version replaced by an accepted one must be refused: %v %s", err, out)
	}

	v1 := queue(t, "manual", "2022-05")
	v2 := queue(t, "manual", "2022-05")
	if v1.Version != 1 || v2.Version != 2 {
		t.Fatalf("versions: %+v %+v", v1, v2)
	}
	if m, err := s.Store.Message(ctx, v1.Number); err != nil || !m.DoNotSend {
		t.Fatalf("version 1 after version 2 was queued: %+v %v", m, err)
	}
	must(t, s.Sim.SetScenario(ak(v2.Number), simulator.AanleverFault))
	until(t, s, v2.Number, domain.StatusSendFailed)
	s.Store.DB().MustExec(`UPDATE messages SET last_status_change = now() - interval '400 days' WHERE number = $1`, v2.Number)
	if out, err := cli(t, "cleanup", "--confirm", fmt.Sprint(v2.Number)); err != nil || !strings.Contains(out, "removed 1 message") {
		t.Fatalf("clean-up of version 2: %v %s", err, out)
	}
	if _, err := s.Store.Message(ctx, v2.Number); err == nil {
		t.Fatal("version 2 is still there after clean-up")
	}

	// The Web UI's signal, sent the way the starter sends it (with start: the workflow
	// of a queued do-not-send message may have ended).
	msgs, err := s.Store.Declarations(ctx, []int64{v1.Number})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := service.Starter(s.Config, s.Temporal).Signal(ctx, msgs[v1.Number], pipeline.SignalRestoreStatus,
		pipeline.OperatorSignal{By: "web-ui"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "version 1 due again", func() (bool, string) {
		m, err := s.Store.Message(ctx, v1.Number)
		if err != nil {
			return false, err.Error()
		}
		return !m.DoNotSend && m.Status == domain.StatusQueued, fmt.Sprintf("%s do-not-send %v", m.Status, m.DoNotSend)
	})
	testenv.Eventually(t, 30*time.Second, "the state query shows it due", func() (bool, string) {
		st := declarationState(t, s, v1.Number)
		return !st.DoNotSend && st.Status == domain.StatusQueued, fmt.Sprintf("%s do-not-send %v: %s", st.Status, st.DoNotSend, st.LastMessage)
	})
	t.Logf("restore-status signal to due: %s", time.Since(start).Round(time.Millisecond))
	if !hasLine(logLines(t, "--message", fmt.Sprint(v1.Number)), v1.Number, "I", "do-not-send cleared") {
		t.Error("no I line says who cleared do-not-send")
	}
	if out := mustCLI(t, "send", fmt.Sprint(v1.Number)); strings.Contains(out, "do-not-send") {
		t.Errorf("send after the restore: %s", out)
	}
	until(t, s, v1.Number, domain.StatusAccepted)
	if d := s.Sim.Deliveries(ak(v1.Number)); d.Accepted != 1 || d.Duplicates != 0 {
		t.Errorf("deliveries of version 1: %+v", d)
	}
}

// Issue 12, item 6: `environments set --auto-send=true` reaches a message that waits in
// a running workflow; it is delivered without an operator's send.
func TestEnvironmentsSetAutoSendReachesARunningWorkflow(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	mustCLI(t, "environments", "add", "later")
	q := queue(t, "later", "2022-06")
	testenv.Eventually(t, 20*time.Second, "workflow waits in stage queued", func() (bool, string) {
		st := declarationState(t, s, q.Number)
		return st.Stage == pipeline.StageQueued, st.Stage
	})
	time.Sleep(2 * time.Second)
	if d := s.Sim.Deliveries(ak(q.Number)); d.Attempts != 0 {
		t.Fatalf("delivered while auto-send was off: %+v", d)
	}
	// A change that sends nothing stays the state query's last message: the Web UI shows
	// that the running workflow took the new settings in.
	if out := mustCLI(t, "environments", "set", "later", "--auto-process=true"); !strings.Contains(out, "1 running workflow(s) told") {
		t.Fatalf("set --auto-process printed %q", out)
	}
	testenv.Eventually(t, 20*time.Second, "the state query says the environment changed", func() (bool, string) {
		st := declarationState(t, s, q.Number)
		return strings.Contains(st.LastMessage, "environment later changed: auto-send false, auto-process true") && st.Stage == pipeline.StageQueued,
			st.Stage + ": " + st.LastMessage
	})
	if d := s.Sim.Deliveries(ak(q.Number)); d.Attempts != 0 {
		t.Fatalf("delivered while auto-send was off: %+v", d)
	}
	start := time.Now()
	out := mustCLI(t, "environments", "set", "later", "--auto-send=true")
	if !strings.Contains(out, "1 running workflow(s) told") {
		t.Fatalf("set printed %q", out)
	}
	sawChange := false
	testenv.Eventually(t, 30*time.Second, "delivered after auto-send was switched on", func() (bool, string) {
		st := declarationState(t, s, q.Number)
		sawChange = sawChange || strings.Contains(st.LastMessage, "environment later changed: auto-send true")
		d := s.Sim.Deliveries(ak(q.Number))
		return d.Accepted == 1, fmt.Sprintf("%+v, last %q", d, st.LastMessage)
	})
	t.Logf("set to delivery: %s", time.Since(start).Round(time.Millisecond))
	until(t, s, q.Number, domain.StatusAccepted)
	if d := s.Sim.Deliveries(ak(q.Number)); d.Accepted != 1 || d.Duplicates != 0 {
		t.Errorf("deliveries: %+v", d)
	}
	// The reload and the send follow each other within one workflow task or two, so a
	// query rarely sees the line in between; the history shows the send followed the signal.
	t.Logf("a query saw the auto-send change as last message: %v", sawChange)
	signalled, sentAfter := false, false
	iter := s.Temporal.GetWorkflowHistory(context.Background(), pipeline.DeclarationID(q.Number), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := e.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.SignalName == pipeline.SignalEnvironmentChanged {
			signalled = true
		}
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil && signalled && (a.ActivityType.GetName() == "Deliver" || a.ActivityType.GetName() == "DeliverAndProcess") {
			sentAfter = true
		}
	}
	if !signalled || !sentAfter {
		t.Errorf("history: environment-changed signalled %v, a delivery activity scheduled after it %v", signalled, sentAfter)
	}
}

// Issue 12, item 2 through the Web UI: the resolve signal closes an unknown reply, its
// workflow ends, and the list filter for open unknown replies no longer finds it.
func TestUnknownReplyResolvedByTheWebUISignal(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	ctx := context.Background()
	if _, _, err := s.Sim.AddPickup(simulator.Pickup{
		Berichtsoort: "Omzetbelasting",
		Identiteit:   digipoort.Identity{Nummer: "001000044B37", Type: "Fi"},
		Bestandsnaam: "verdwaald.xml",
		Inhoud:       []byte("<bericht>niemands antwoord</bericht>"),
	}); err != nil {
		t.Fatal(err)
	}
	if c := sendReceive(t); c.ONB != 1 {
		t.Fatalf("counts: %+v", c)
	}
	var onbs []store.ONB
	cliJSON(t, &onbs, "onb", "list")
	if len(onbs) != 1 || !onbs[0].Open {
		t.Fatalf("onb list: %+v", onbs)
	}
	n := onbs[0].Number
	id := pipeline.UnknownReplyID(n)
	found := func(query string) (bool, string) {
		resp, err := s.Temporal.ListWorkflow(ctx, listRequest(s, query))
		if err != nil {
			return false, err.Error()
		}
		for _, e := range resp.Executions {
			if e.Execution.WorkflowId == id {
				return true, ""
			}
		}
		return false, fmt.Sprint(len(resp.Executions), " found")
	}
	const open = `KoerierStatus="unknown" AND ExecutionStatus="Running"`
	testenv.Eventually(t, 30*time.Second, "the unknown reply listed as open", func() (bool, string) { return found(open) })

	start := time.Now()
	const memo = "a test message of the authority, nothing to file"
	if err := s.Temporal.SignalWorkflow(ctx, id, "", pipeline.SignalResolveONB, pipeline.ResolveONBSignal{Memo: memo, By: "web-ui"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the unknown reply's workflow completed", func() (bool, string) {
		d, err := s.Temporal.DescribeWorkflow(ctx, id, "")
		if err != nil {
			return false, err.Error()
		}
		return d.Status == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, d.Status.String()
	})
	t.Logf("resolve signal to completed workflow: %s", time.Since(start).Round(time.Millisecond))
	cliJSON(t, &onbs, "onb", "list", "--all")
	var row *store.ONB
	for i := range onbs {
		if onbs[i].Number == n {
			row = &onbs[i]
		}
	}
	if row == nil || row.Open || !strings.Contains(row.Memo, memo) {
		t.Fatalf("onb list --all after the signal: %+v", onbs)
	}
	cliJSON(t, &onbs, "onb", "list")
	if len(onbs) != 0 {
		t.Errorf("still open: %+v", onbs)
	}
	testenv.Eventually(t, 30*time.Second, "no longer listed as open", func() (bool, string) {
		if ok, _ := found(open); ok {
			return false, "still listed as open"
		}
		return true, ""
	})
	testenv.Eventually(t, 30*time.Second, "listed as resolved", func() (bool, string) { return found(`KoerierStatus="resolved"`) })
}

// Issue 12, item 1: the state query lists the message's declaration file as it was
// queued, so the Web UI shows what was filed.
func TestStateQueryCarriesTheAttachments(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	mustCLI(t, "environments", "add", "acme")
	q := queue(t, "acme", "2022-07")
	until(t, s, q.Number, domain.StatusAccepted)
	body, err := os.ReadFile(vatReturn(t))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	var st pipeline.State
	testenv.Eventually(t, 20*time.Second, "the state query shows accepted", func() (bool, string) {
		st = declarationState(t, s, q.Number)
		return st.Status == domain.StatusAccepted, string(st.Status)
	})
	var declarations []pipeline.File
	for _, f := range st.Attachments {
		if f.Role == "declaration" {
			declarations = append(declarations, f)
		}
	}
	if len(declarations) != 1 {
		t.Fatalf("declaration files in the state query: %+v", st.Attachments)
	}
	f := declarations[0]
	if f.Message != q.Number || f.Name != filepath.Base(vatReturn(t)) || f.Size != int64(len(body)) || f.SHA256 != hex.EncodeToString(sum[:]) || f.ID == 0 {
		t.Errorf("declaration in the state query: %+v; queued %s, %d bytes, sha256 %x", f, filepath.Base(vatReturn(t)), len(body), sum)
	}
}
