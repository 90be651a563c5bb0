package activities_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"koerier/activities"
	"koerier/digipoort"
	"koerier/digipoort/simulator"
	"koerier/domain"
	"koerier/internal/testdb"
	"koerier/pipeline"
	"koerier/store"
)

var ctx = context.Background()

const (
	testEnv   = "acme"
	taskQueue = "koerier-test"
	period    = "2026-10"
	// opDeliver is digipoort's name of the delivery operation (wire.OpAanleveren).
	opDeliver = "aanleveren"
)

// --- a scripted Digipoort ---------------------------------------------------

// answer is one scripted reply to a Deliver call.
type answer struct {
	resp digipoort.DeliverResponse
	err  error
}

// statusAnswer is the scripted reply to Statuses for one kenmerk.
type statusAnswer struct {
	statuses []digipoort.Status
	err      error
}

// findCall is what DeliveryCandidates was asked.
type findCall struct {
	berichtsoort string
	id           digipoort.Identity
	since        time.Time
}

// fakeDigipoort answers as each test scripts it and counts every call. It is safe for
// the concurrent calls the activities make.
type fakeDigipoort struct {
	mu sync.Mutex
	// answers are given to Deliver in order; when none is left Deliver answers with
	// kenmerk "KM-<aanleverkenmerk>".
	answers []answer
	// found is the one candidate DeliveryCandidates reports ("" is none), candidates
	// more of them, findErr its error.
	found      string
	candidates []digipoort.Candidate
	findErr    error
	// probe lists kenmerken DeliveryCandidates asks its known callback about; the
	// answers land in known.
	probe     []string
	known     map[string]bool
	statuses  map[string]statusAnswer
	lijst     []digipoort.BerichtRef
	berichten map[string][]digipoort.Bericht

	calls    map[string]int
	requests []digipoort.DeliverRequest
	finds    []findCall
}

var _ activities.Digipoort = (*fakeDigipoort)(nil)

func newFakeDigipoort() *fakeDigipoort {
	return &fakeDigipoort{known: map[string]bool{}, statuses: map[string]statusAnswer{}, berichten: map[string][]digipoort.Bericht{}, calls: map[string]int{}}
}

// script queues answers for the next Deliver calls.
func (f *fakeDigipoort) script(a ...answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers = append(f.answers, a...)
}

// set changes the script under the lock (the activities may still be calling).
func (f *fakeDigipoort) set(fn func(f *fakeDigipoort)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// count returns how often the method was called.
func (f *fakeDigipoort) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fakeDigipoort) Deliver(_ context.Context, r digipoort.DeliverRequest) (digipoort.DeliverResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Deliver"]++
	f.requests = append(f.requests, r)
	if len(f.answers) == 0 {
		return digipoort.DeliverResponse{Kenmerk: "KM-" + r.Aanleverkenmerk, Aanleverkenmerk: r.Aanleverkenmerk}, nil
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	return a.resp, a.err
}

func (f *fakeDigipoort) Statuses(_ context.Context, kenmerk string, _, _ time.Time) ([]digipoort.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Statuses"]++
	f.calls["Statuses/"+kenmerk]++
	a := f.statuses[kenmerk]
	return a.statuses, a.err
}

func (f *fakeDigipoort) BerichtenLijst(context.Context, time.Time, time.Time) ([]digipoort.BerichtRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["BerichtenLijst"]++
	return f.lijst, nil
}

func (f *fakeDigipoort) BerichtenKenmerk(_ context.Context, kenmerk string, _, _ time.Time) ([]digipoort.Bericht, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["BerichtenKenmerk"]++
	return f.berichten[kenmerk], nil
}

func (f *fakeDigipoort) DeliveryCandidates(_ context.Context, berichtsoort string, id digipoort.Identity, since time.Time,
	known func(string) (bool, error)) ([]digipoort.Candidate, error) {
	f.mu.Lock()
	f.calls["DeliveryCandidates"]++
	probe := f.probe
	f.finds = append(f.finds, findCall{berichtsoort: berichtsoort, id: id, since: since})
	f.mu.Unlock()
	// known reads Postgres: don't hold the lock while it does.
	answers := map[string]bool{}
	for _, k := range probe {
		mine, err := known(k)
		if err != nil {
			return nil, err
		}
		answers[k] = mine
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range answers {
		f.known[k] = v
	}
	out := append([]digipoort.Candidate(nil), f.candidates...)
	if f.found != "" {
		out = append(out, digipoort.Candidate{Kenmerk: f.found, Started: since.Add(3 * time.Minute)})
	}
	return out, f.findErr
}

// deliverErr is an error of Digipoort's delivery operation.
func deliverErr(kind digipoort.Kind, httpStatus int, foutcode, msg string) *digipoort.Error {
	return &digipoort.Error{Op: opDeliver, Kind: kind, HTTPStatus: httpStatus, Foutcode: foutcode, Msg: msg}
}

// --- a recording Temporal client ---------------------------------------------

// startCall is one ExecuteWorkflow or SignalWithStartWorkflow call.
type startCall struct {
	method     string
	workflowID string
	signal     string
	arg        any
	options    client.StartWorkflowOptions
	workflow   any
	args       []any
}

// fakeClient records what pipeline.Starter asks of Temporal.
type fakeClient struct {
	mu    sync.Mutex
	calls []startCall
}

var _ pipeline.Client = (*fakeClient)(nil)

func (c *fakeClient) record(s startCall) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, s)
}

func (c *fakeClient) ExecuteWorkflow(_ context.Context, options client.StartWorkflowOptions, workflow interface{},
	args ...interface{}) (client.WorkflowRun, error) {
	c.record(startCall{method: "ExecuteWorkflow", workflowID: options.ID, options: options, workflow: workflow, args: args})
	return nil, nil
}

func (c *fakeClient) SignalWithStartWorkflow(_ context.Context, workflowID string, signalName string, signalArg interface{},
	options client.StartWorkflowOptions, workflow interface{}, workflowArgs ...interface{}) (client.WorkflowRun, error) {
	c.record(startCall{method: "SignalWithStartWorkflow", workflowID: workflowID, signal: signalName, arg: signalArg, options: options,
		workflow: workflow, args: workflowArgs})
	return nil, nil
}

// signals returns the recorded calls, in no particular order (they are concurrent).
func (c *fakeClient) signals() []startCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]startCall(nil), c.calls...)
}

// reset forgets the calls recorded so far.
func (c *fakeClient) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = nil
}

// --- the harness ---------------------------------------------------------------

// harness is a real Postgres store with one environment, the fakes, and the
// activities registered in Temporal's test activity environment. Each test has a
// database of its own, so newHarness marks the test parallel.
type harness struct {
	t    *testing.T
	st   *store.Store
	dp   *fakeDigipoort
	tc   *fakeClient
	acts *activities.Activities
	env  *testsuite.TestActivityEnvironment
	// sim is the simulator useSimulator started (nil: the scripted Digipoort).
	sim *simulator.Sim
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	t.Parallel()
	cat := domain.DefaultCatalog()
	st, err := store.Open(ctx, testdb.New(t), store.Options{Migrate: true, Catalog: &cat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.AddEnvironment(ctx, store.Environment{Name: testEnv}); err != nil {
		t.Fatal(err)
	}
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	h := &harness{t: t, st: st, dp: newFakeDigipoort(), tc: &fakeClient{}}
	h.acts = &activities.Activities{Store: st, Digipoort: h.dp, Log: quiet, Config: activities.Config{
		Starter: pipeline.Starter{Client: h.tc, TaskQueue: taskQueue}, Rol: "Bedrijf", UncertainWait: time.Hour, Parallel: 4,
	}}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	h.env = s.NewTestActivityEnvironment()
	h.env.RegisterActivity(h.acts)
	return h
}

// run executes one activity the way a worker would and decodes its result.
func run[T any](h *harness, activity any, args ...any) (T, error) {
	h.t.Helper()
	var out T
	val, err := h.env.ExecuteActivity(activity, args...)
	if err != nil {
		return out, err
	}
	if val != nil && val.HasValue() {
		if err := val.Get(&out); err != nil {
			h.t.Fatalf("decode the result: %v", err)
		}
	}
	return out, nil
}

func (h *harness) deliverCall(n int64) (pipeline.DeliverResult, error) {
	h.t.Helper()
	return run[pipeline.DeliverResult](h, h.acts.Deliver, n)
}

// queue stores a VAT return for subject in the test environment.
func (h *harness) queue(subject string) store.Queued {
	h.t.Helper()
	q, err := h.st.Queue(ctx, store.QueueRequest{Environment: testEnv, Type: domain.TypeVAT, Subject: vatNumber(subject), Period: period,
		Attachments: []domain.Attachment{{FileName: "aangifte.xbrl", MimeType: "application/xml",
			Content: []byte(`<?xml version="1.0"?><xbrli:xbrl xmlns:xbrli="http://www.xbrl.org/2003/instance"><n>` + subject + `</n></xbrli:xbrl>`)}}})
	if err != nil {
		h.t.Fatal(err)
	}
	return q
}

// vatNumber turns the short subjects tests name declarations by ("1", "2") into the
// omzetbelastingnummers store.Queue requires of VAT returns (000000001B01; sent as
// identity BTW NL000000001B01).
func vatNumber(subject string) string {
	if subject == "" || len(subject) > 8 || strings.Trim(subject, "0123456789") != "" {
		return subject
	}
	return strings.Repeat("0", 9-len(subject)) + subject + "B01"
}

// delivered queues a message for subject and delivers it with the activity, Digipoort
// answering with kenmerk.
func (h *harness) delivered(subject, kenmerk string) int64 {
	h.t.Helper()
	n := h.queue(subject).Number
	h.dp.script(answer{resp: digipoort.DeliverResponse{Kenmerk: kenmerk}})
	res, err := h.deliverCall(n)
	if err != nil || res.Outcome != pipeline.OutcomeSent || res.Kenmerk != kenmerk {
		h.t.Fatalf("deliver message %d: %+v %v", n, res, err)
	}
	return n
}

func (h *harness) message(n int64) store.Message {
	h.t.Helper()
	m, err := h.st.Message(ctx, n)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// requireMessage checks a message's status, needs-action flag and current kenmerk
// ("" is none) in Postgres.
func (h *harness) requireMessage(n int64, status domain.Status, needsAction bool, kenmerk string) store.Message {
	h.t.Helper()
	m := h.message(n)
	got := ""
	if m.Kenmerk != nil {
		got = *m.Kenmerk
	}
	if m.Status != status || m.NeedsAction != needsAction || got != kenmerk {
		h.t.Fatalf("message %d in Postgres: status %s, needs action %v, kenmerk %q; want %s, %v, %q (reason %q)",
			n, m.Status, m.NeedsAction, got, status, needsAction, kenmerk, m.NeedsActionReason)
	}
	return m
}

func (h *harness) count(query string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.st.DB().GetContext(ctx, &n, query, args...); err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (h *harness) exec(query string, args ...any) {
	h.t.Helper()
	if _, err := h.st.DB().ExecContext(ctx, query, args...); err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
}

// requireLog checks that message n has want log lines of the level whose description
// contains text, and returns them.
func (h *harness) requireLog(n int64, level domain.Level, text string, want int) []store.LogEntry {
	h.t.Helper()
	lines, err := h.st.ReadLog(ctx, store.LogFilter{Message: n, Level: level})
	if err != nil {
		h.t.Fatal(err)
	}
	var match []store.LogEntry
	for _, l := range lines {
		if strings.Contains(l.Description, text) {
			match = append(match, l)
		}
	}
	if len(match) != want {
		var all []string
		for _, l := range lines {
			all = append(all, l.Description)
		}
		h.t.Fatalf("message %d: %d %s line(s) containing %q, want %d; its %s lines:\n%s", n, len(match), level, text, want, level, strings.Join(all, "\n"))
	}
	return match
}

// --- error assertions ------------------------------------------------------------

// requireFinal checks that err is a non-retryable application error of type typ whose
// text contains want.
func requireFinal(t *testing.T, err error, typ, want string) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || !pipeline.IsErrorType(err, typ) {
		t.Fatalf("want a non-retryable %s error, got %v", typ, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not mention %q", err, want)
	}
}

// requireRetryable checks that err is an error Temporal retries, whose text contains
// each of want.
func requireRetryable(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("want a retryable error, got none")
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.NonRetryable() {
		t.Fatalf("want a retryable error, got a non-retryable %s error: %v", app.Type(), err)
	}
	if !containsAll(err.Error(), want...) {
		t.Fatalf("error %q does not mention all of %q", err, want)
	}
}

// requireCalls checks how often the fake Digipoort was called, per method.
func (h *harness) requireCalls(want map[string]int) {
	h.t.Helper()
	for method, n := range want {
		if got := h.dp.count(method); got != n {
			h.t.Fatalf("Digipoort %s called %d time(s), want %d", method, got, n)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
