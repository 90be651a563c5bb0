package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"koerier/digipoort"
	"koerier/digipoort/simulator"
	"koerier/domain"
	"koerier/internal/testenv"
	"koerier/pipeline"
	"koerier/store"
)

type queued struct {
	Number  int64  `json:"number"`
	Version int    `json:"version"`
	Status  string `json:"status"`
}

type envRow struct {
	Number           int64     `json:"number"`
	Type             string    `json:"type"`
	Subject          string    `json:"subject"`
	Period           string    `json:"period"`
	Version          int       `json:"version"`
	Status           string    `json:"status"`
	DoNotSend        bool      `json:"do_not_send"`
	NeedsAction      bool      `json:"needs_action"`
	LastStatusChange time.Time `json:"last_status_change"`
}

func queue(t *testing.T, env, period string, extra ...string) queued {
	t.Helper()
	var q queued
	cliJSON(
		t,
		&q,
		append([]string{"queue", "--env", env, "--type", "btw", "--subject", "001000044B37", "--period", period, "--file", vatReturn(t)}, extra...)...)
	return q
}

func sendReceive(t *testing.T) pipeline.SendReceiveCounts {
	t.Helper()
	var c pipeline.SendReceiveCounts
	cliJSON(t, &c, "send-receive")
	return c
}

// until runs send/receive until the message reaches want in the operator's view.
func until(t *testing.T, s *testenv.Stack, number int64, want domain.Status) {
	t.Helper()
	// A minute: a delivery whose answer was lost is looked up with the activity's
	// back-off (2 s, 4 s, …), and CI's machine is busy.
	testenv.Eventually(t, time.Minute, fmt.Sprintf("message %d %s", number, want), func() (bool, string) {
		sendReceive(t)
		m, err := s.Store.Message(context.Background(), number)
		if err != nil {
			return false, err.Error()
		}
		return m.Status == want, string(m.Status)
	})
}

func envView(t *testing.T, env string) map[int64]envRow {
	t.Helper()
	var rows []envRow
	cliJSON(t, &rows, "status", "--env", env)
	out := map[int64]envRow{}
	for _, r := range rows {
		out[r.Number] = r
	}
	return out
}

func waitEnvStatus(t *testing.T, env string, number int64, want string) envRow {
	t.Helper()
	var row envRow
	testenv.Eventually(t, 20*time.Second, fmt.Sprintf("environment %s sees message %d %s", env, number, want), func() (bool, string) {
		row = envView(t, env)[number]
		return row.Status == want, row.Status
	})
	return row
}

func logLines(t *testing.T, args ...string) []store.LogEntry {
	t.Helper()
	var lines []store.LogEntry
	cliJSON(t, &lines, append([]string{"log"}, args...)...)
	return lines
}

func hasLine(lines []store.LogEntry, number int64, level domain.Level, contains string) bool {
	for _, l := range lines {
		if l.Level == level && (number == 0 || (l.MessageNumber != nil && *l.MessageNumber == number)) &&
			strings.Contains(l.Description+" "+l.Information, contains) {
			return true
		}
	}
	return false
}

// A VAT return goes queue → send → replies → process → report and ends accepted,
// delivered exactly once, findable in the Web UI by its search attributes.
func TestVATReturnReachesAccepted(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	mustCLI(t, "environments", "add", "acme")
	q := queue(t, "acme", "2021-10")
	if q.Version != 1 || q.Status != "queued" {
		t.Fatalf("queue: %+v", q)
	}
	c := sendReceive(t)
	if c.Sent != 1 || c.Dispatched != 1 {
		t.Fatalf("first run: %+v", c)
	}
	until(t, s, q.Number, domain.StatusAccepted)
	if row := envView(t, "acme")[q.Number]; row.Status != "queued" {
		t.Errorf("the environment must not see unprocessed replies: %+v", row)
	}
	mustCLI(t, "process")
	row := waitEnvStatus(t, "acme", q.Number, "accepted")
	if row.Type != "btw" || row.Version != 1 || row.DoNotSend || row.NeedsAction || row.LastStatusChange.IsZero() {
		t.Errorf("environment view: %+v", row)
	}
	testenv.Eventually(t, 10*time.Second, "report line", func() (bool, string) {
		return hasLine(logLines(t, "--level", "I"), q.Number, "I", "accepted by the authority"), ""
	})
	if d := s.Sim.Deliveries(ak(q.Number)); d.Accepted != 1 || d.Duplicates != 0 {
		t.Errorf("deliveries at Digipoort: %+v", d)
	}
	// The operators' one Web UI query.
	testenv.Eventually(t, 10*time.Second, "search attributes", func() (bool, string) {
		resp, err := s.Temporal.ListWorkflow(
			context.Background(),
			listRequest(s, `KoerierEnvironment="acme" AND KoerierMessageType="btw" AND KoerierStatus="accepted"`),
		)
		if err != nil {
			return false, err.Error()
		}
		return len(resp.Executions) == 1 && resp.Executions[0].Execution.WorkflowId == pipeline.DeclarationID(q.Number), fmt.Sprint(len(resp.Executions))
	})
	recordHistory(t, s, pipeline.DeclarationID(q.Number), "declaration-accepted")
	recordHistory(t, s, firstSendReceive(t, s), "send-receive-pages-renew")
}

// A rejected declaration waits for restore; restored, the next send/receive sends it
// again (as a new attempt) and it ends accepted.
func TestRejectedIsRestoredResentAndAccepted(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	mustCLI(t, "environments", "add", "acme", "--auto-process")
	q := queue(t, "acme", "2021-11")
	if err := s.Sim.SetScenario(ak(q.Number), simulator.KoerierValidatieNietGelukt); err != nil {
		t.Fatal(err)
	}
	until(t, s, q.Number, domain.StatusRejected)
	waitEnvStatus(t, "acme", q.Number, "rejected")
	testenv.Eventually(t, 10*time.Second, "rejection reported", func() (bool, string) {
		return hasLine(logLines(t, "--level", "F"), q.Number, "F", "VAS500"), ""
	})
	// Restore works on a message whose workflow has closed, too.
	if err := s.Temporal.TerminateWorkflow(context.Background(), pipeline.DeclarationID(q.Number), "",
		"test: workflow gone while waiting for restore"); err != nil {
		t.Fatal(err)
	}
	out := mustCLI(t, "restore", fmt.Sprint(q.Number))
	if !strings.Contains(out, "attempt 2") {
		t.Errorf("restore: %s", out)
	}
	until(t, s, q.Number, domain.StatusAccepted)
	waitEnvStatus(t, "acme", q.Number, "accepted")
	first, second := s.Sim.Deliveries(ak(q.Number)), s.Sim.Deliveries(domain.Aanleverkenmerk(domain.DefaultAanleverkenmerkPrefix, q.Number, 2))
	if first.Accepted != 1 || second.Accepted != 1 || first.Duplicates+second.Duplicates != 0 {
		t.Errorf("deliveries: first %+v second %+v", first, second)
	}
	replies, _ := s.Store.Replies(context.Background(), q.Number)
	attempts := map[int]int{}
	for _, r := range replies {
		attempts[r.Attempt]++
	}
	if attempts[1] < 5 || attempts[2] < 5 {
		t.Errorf("every reply of both attempts is kept: %v", attempts)
	}
	testenv.Eventually(t, 10*time.Second, "workflow done", func() (bool, string) {
		d, err := s.Temporal.DescribeWorkflow(context.Background(), pipeline.DeclarationID(q.Number), "")
		return err == nil && d.Status == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, ""
	})
	// The Web UI's state query carries the message's F lines (issue 12, item 9): the
	// rejection's, although it was written before this run of the workflow started.
	st := declarationState(t, s, q.Number)
	rejection := false
	for _, e := range st.Errors {
		rejection = rejection || strings.Contains(e.Description+" "+e.Information, "VAS500")
	}
	if !rejection {
		t.Errorf("the state query lacks the rejection's F line: %+v", st.Errors)
	}
	recordHistory(t, s, pipeline.DeclarationID(q.Number), "declaration-restored-after-terminate")
}

// Rule 3 (docs/rules.md) through the pipeline: an old version is never sent, and restoring it is
// refused with the reason.
func TestOldVersionCannotBeResent(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	mustCLI(t, "environments", "add", "acme")
	v1 := queue(t, "acme", "2021-12")
	v2 := queue(t, "acme", "2021-12")
	if v2.Version != 2 {
		t.Fatalf("v2: %+v", v2)
	}
	// send says so and signals nothing (non-zero exit: nothing was sent).
	if out, err := cli(t, "send", fmt.Sprint(v1.Number)); err == nil || !strings.Contains(out, "do-not-send (version 2 of its declaration replaced it)") {
		t.Fatalf("send of version 1: %v %s", err, out)
	}
	until(t, s, v2.Number, domain.StatusAccepted)
	if d := s.Sim.Deliveries(ak(v1.Number)); d.Attempts != 0 {
		t.Fatalf("version 1 reached Digipoort: %+v", d)
	}
	row := envView(t, "acme")[v1.Number]
	if !row.DoNotSend || row.Status != "queued" {
		t.Errorf("version 1: %+v", row)
	}
	// Fail version 2 so that restore is possible on it, then try restore on v1.
	s.Store.DB().MustExec(`UPDATE messages SET status = 'rejected' WHERE number = $1`, v1.Number)
	out, err := cli(t, "restore", fmt.Sprint(v1.Number))
	if err == nil || !strings.Contains(out, "version 2 exists") {
		t.Fatalf("restore of version 1: %v %s", err, out)
	}
}

// Rule 6 through the pipeline: while one send/receive runs, a second fails at once
// with a message naming the holder and when it is released.
func TestSecondSendReceiveIsRefusedWhileOneRuns(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	mustCLI(t, "environments", "add", "acme")
	queue(t, "acme", "2022-01")
	if err := s.Sim.SetFaults("aanleveren", simulator.FaultConfig{Slow: &simulator.Rule{Count: 1, Delay: simulator.Duration(4 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { _, err := cli(t, "send-receive"); first <- err }()
	testenv.Eventually(t, 10*time.Second, "first run holds the lock", func() (bool, string) {
		l, err := s.Store.LockStatus(context.Background(), store.LockSendReceive)
		return err == nil && l != nil, ""
	})
	start := time.Now()
	out, err := cli(t, "send-receive")
	if err == nil {
		t.Fatalf("second run was not refused: %s", out)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("refusal took %s; it must come at once", took)
	}
	for _, want := range []string{"already running", "send-receive-manual-", "by itself at"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q lacks %q", err, want)
		}
	}
	if err := <-first; err != nil {
		t.Fatalf("first run: %v", err)
	}
	if l, _ := s.Store.LockStatus(context.Background(), store.LockSendReceive); l != nil {
		t.Errorf("lock still held after the run: %+v", l)
	}
	sendReceive(t)
}

// Rule 5: a reply that links to nothing becomes an unknown reply, apart in the
// operator's view, with an F line.
func TestUnknownReplyBecomesONB(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	kenmerk, _, err := s.Sim.AddPickup(
		simulator.Pickup{
			Berichtsoort: "Omzetbelasting",
			Identiteit:   digipoort.Identity{Nummer: "999999999B01", Type: "Fi"},
			Inhoud:       []byte("<bericht>wie ben ik?</bericht>"),
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	c := sendReceive(t)
	if c.ONB != 1 {
		t.Fatalf("counts: %+v", c)
	}
	var msgs []map[string]any
	cliJSON(t, &msgs, "messages")
	onb := 0
	for _, m := range msgs {
		if m["subtype"] == "ONB" {
			onb++
			if m["environment"] != nil || m["pickup_kenmerk"] != kenmerk {
				t.Errorf("ONB: %+v", m)
			}
		}
	}
	if onb != 1 {
		t.Fatalf("messages: %+v", msgs)
	}
	if !hasLine(logLines(t, "--level", "F"), 0, "F", kenmerk) {
		t.Error("no F line names the unknown kenmerk")
	}
	if c := sendReceive(t); c.ONB != 0 {
		t.Errorf("the same unknown reply was stored again: %+v", c)
	}
}

// Rule 8 through the pipeline: clean-up removes exactly what it may, a selection is all
// or nothing, and the command line does a dry run unless told --confirm.
func TestCleanupRemovesExactlyWhatItMay(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	mustCLI(t, "environments", "add", "acme")
	old := queue(t, "acme", "2020-01")
	oldAccepted := queue(t, "acme", "2020-02")
	young := queue(t, "acme", "2020-03")
	oldQueued := queue(t, "acme", "2020-04")
	db := s.Store.DB()
	age := func(number int64, status string) {
		db.MustExec(`UPDATE messages SET queued_at = now() - interval '40 days', last_status_change = now() - interval '40 days',
			status = COALESCE(NULLIF($2, ''), status) WHERE number = $1`, number, status)
	}
	age(old.Number, "sent")
	age(oldAccepted.Number, "accepted")
	db.MustExec(`UPDATE messages SET status = 'sent' WHERE number = $1`, young.Number)
	age(oldQueued.Number, "")

	var dry pipeline.CleanupOutcome
	cliJSON(t, &dry, "cleanup")
	if !dry.DryRun || dry.Removed != 1 || dry.Numbers[0] != old.Number {
		t.Fatalf("dry run: %+v", dry)
	}
	out, err := cli(t, "cleanup", "--confirm", fmt.Sprint(old.Number), fmt.Sprint(young.Number))
	if err == nil || !strings.Contains(out, fmt.Sprintf("refused %d", young.Number)) {
		t.Fatalf("selection with a young message: %v %s", err, out)
	}
	var n int
	_ = db.Get(&n, `SELECT count(*) FROM messages WHERE direction = 'out'`)
	if n != 4 {
		t.Fatalf("a refused selection removed something: %d left", n)
	}
	var done pipeline.CleanupOutcome
	cliJSON(t, &done, "cleanup", "--confirm")
	if done.DryRun || done.Removed != 1 || done.Numbers[0] != old.Number || done.Attachments != 1 {
		t.Fatalf("clean-up: %+v", done)
	}
	var left []int64
	_ = db.Select(&left, `SELECT number FROM messages WHERE direction = 'out' ORDER BY number`)
	if fmt.Sprint(left) != fmt.Sprint([]int64{oldAccepted.Number, young.Number, oldQueued.Number}) {
		t.Errorf("left: %v", left)
	}
	_ = db.Get(&n, `SELECT count(*) FROM attachments WHERE message_number = $1`, old.Number)
	if n != 0 {
		t.Error("attachments outlived their message")
	}
	var fiscal pipeline.CleanupOutcome
	cliJSON(t, &fiscal, "cleanup", "--confirm", "--fiscal", fmt.Sprint(oldAccepted.Number))
	if fiscal.Removed != 1 {
		t.Errorf("fiscal mode: %+v", fiscal)
	}
}

// An environment that sends automatically needs no send/receive to deliver.
func TestAutoSendDeliversAtOnce(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	mustCLI(t, "environments", "add", "fast", "--auto-send", "--auto-process")
	q := queue(t, "fast", "2022-02")
	testenv.Eventually(t, 15*time.Second, "auto-send delivery", func() (bool, string) {
		d := s.Sim.Deliveries(ak(q.Number))
		return d.Accepted == 1, fmt.Sprint(d)
	})
	until(t, s, q.Number, domain.StatusAccepted)
	waitEnvStatus(t, "fast", q.Number, "accepted")
}

// Cancel or terminate never loses a queued declaration: the next send/receive
// re-creates its workflow and delivers it.
func TestCancelledAndTerminatedWorkflowsAreRecreated(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	mustCLI(t, "environments", "add", "acme", "--auto-process")
	a := queue(t, "acme", "2022-03")
	b := queue(t, "acme", "2022-04")
	ctx := context.Background()
	if err := s.Temporal.CancelWorkflow(ctx, pipeline.DeclarationID(a.Number), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Temporal.TerminateWorkflow(ctx, pipeline.DeclarationID(b.Number), "", "operator test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "cancel logged", func() (bool, string) {
		return hasLine(logLines(t, "--level", "F"), a.Number, "F", "not withdrawn"), ""
	})
	until(t, s, a.Number, domain.StatusAccepted)
	until(t, s, b.Number, domain.StatusAccepted)
	waitEnvStatus(t, "acme", b.Number, "accepted")
}

// A delivery whose answer is lost (Digipoort processed it, the connection broke) is
// found at Digipoort instead of being filed twice.
func TestLostDeliveryAnswerIsNotFiledTwice(t *testing.T) {
	s, q := lostAnswer(t, simulator.Mode{}, "2022-05")
	until(t, s, q.Number, domain.StatusAccepted)
	d := s.Sim.Deliveries(ak(q.Number))
	if d.Accepted != 1 || d.Duplicates != 0 {
		t.Fatalf("filed %d times (%d duplicates): %+v", d.Accepted, d.Duplicates, d)
	}
	if !hasLine(logLines(t, "--step", "send"), q.Number, "I", "found at Digipoort after an interrupted delivery") {
		t.Error("the recovery is not logged")
	}
}

// Schedules show in the Web UI's Schedules tab; applying them twice is safe.
func TestSchedulesApplyIsIdempotent(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{NoWorker: true})
	t.Setenv("KOERIER_CLEANUP_RETENTION", "90d")
	first := mustCLI(t, "schedules", "apply")
	second := mustCLI(t, "schedules", "apply")
	if !strings.Contains(first, "koerier-send-receive created") || !strings.Contains(first, "koerier-cleanup created") ||
		!strings.Contains(second, "koerier-send-receive updated") || !strings.Contains(second, "koerier-cleanup updated") {
		t.Fatalf("first %q second %q", first, second)
	}
	if ids := scheduleIDs(t, s); !ids["koerier-send-receive"] || !ids["koerier-cleanup"] || !ids["koerier-certificates"] || len(ids) != 3 {
		t.Errorf("schedules: %v", ids)
	}
	d, err := s.Temporal.ScheduleClient().GetHandle(context.Background(), "koerier-cleanup").Describe(context.Background())
	if err != nil || !strings.Contains(d.Schedule.State.Note, "90 days") {
		t.Errorf("clean-up schedule: %+v %v", d, err)
	}
}

// Removal is irreversible: without KOERIER_CLEANUP_RETENTION there is no clean-up
// schedule, and `schedules apply` removes one that exists, saying so (rule 8).
func TestSchedulesApplyWithoutRetentionHasNoCleanup(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{NoWorker: true})
	t.Setenv("KOERIER_CLEANUP_RETENTION", "")
	out := mustCLI(t, "schedules", "apply")
	if !strings.Contains(out, "koerier-cleanup not configured: KOERIER_CLEANUP_RETENTION is not set") {
		t.Fatalf("apply without retention: %q", out)
	}
	if ids := scheduleIDs(t, s); ids["koerier-cleanup"] || !ids["koerier-send-receive"] || !ids["koerier-certificates"] || len(ids) != 2 {
		t.Errorf("schedules without retention: %v", ids)
	}

	t.Setenv("KOERIER_CLEANUP_RETENTION", "30d")
	if out := mustCLI(t, "schedules", "apply"); !strings.Contains(out, "koerier-cleanup created") {
		t.Fatalf("apply with retention: %q", out)
	}
	t.Setenv("KOERIER_CLEANUP_RETENTION", "")
	if out := mustCLI(t, "schedules", "apply"); !strings.Contains(out, "koerier-cleanup removed: KOERIER_CLEANUP_RETENTION is not set") {
		t.Fatalf("apply after the retention was unset: %q", out)
	}
	// Asked directly: the list is read from visibility, which may lag a deletion.
	var nf *serviceerror.NotFound
	if _, err := s.Temporal.ScheduleClient().GetHandle(context.Background(), "koerier-cleanup").Describe(context.Background()); !errors.As(err, &nf) {
		t.Errorf("the clean-up schedule is still there after the retention was unset: %v", err)
	}
}

func scheduleIDs(t *testing.T, s *testenv.Stack) map[string]bool {
	t.Helper()
	iter, err := s.Temporal.ScheduleClient().List(context.Background(), client.ScheduleListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		ids[e.ID] = true
	}
	return ids
}

// The daily certificate check runs on the worker and reports what the Web UI shows as
// its result: every configured certificate and the days left. Started on the
// declarations' queue on purpose, as schedules did before the control queue existed:
// the worker still runs such a run (pipeline.ControlQueue).
func TestCertificateCheckReportsTheDaysLeft(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "certificate-check-e2e", TaskQueue: pipeline.DefaultTaskQueue},
		pipeline.CertificateCheckWorkflowType)
	if err != nil {
		t.Fatal(err)
	}
	var res pipeline.CertificateCheckResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	// The simulator's development certificates are valid for years: no warning is due.
	if res.ClientDaysLeft == nil || *res.ClientDaysLeft < 60 || res.SigningDaysLeft == nil || len(res.Warnings) != 0 {
		t.Errorf("result %+v", res)
	}
	joined := strings.Join(res.Certificates, "\n")
	if !strings.Contains(joined, "client") || !strings.Contains(joined, "in use") || !strings.Contains(joined, "response-signing") {
		t.Errorf("certificates %v", res.Certificates)
	}
}
