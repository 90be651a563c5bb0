package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.temporal.io/api/enums/v1"

	"koerier/domain"
	"koerier/internal/testenv"
	"koerier/pipeline"
	"koerier/store"
)

// hookReceiver is an environment's webhook endpoint as its developers would write
// it: it verifies each post with the Standard Webhooks reference library, answers 400
// to one that does not verify, and drops an event id it has seen (de-duplication).
// The test sets what it answers, and takes it down and up again on the same port.
type hookReceiver struct {
	t    *testing.T
	addr string

	mu       sync.Mutex
	srv      *http.Server
	secret   string
	status   int
	lose     int               // posts still to take whose answer is lost (the connection drops)
	posts    int               // every post that verified
	answered map[int]int       // posts per status answered
	bad      int               // posts that did not verify
	bodies   map[string]string // id → body, first arrival
	again    map[string]int    // id → later arrivals (dropped)
	mismatch []string          // ids that came again with another body
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{t: t, status: http.StatusNoContent, answered: map[int]int{}, bodies: map[string]string{}, again: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.down)
	return r
}

func (r *hookReceiver) url() string { return "http://" + r.addr + "/koerier/events" }

func (r *hookReceiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down closes the listener: posts meet "connection refused".
func (r *hookReceiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up listens on the same address again.
func (r *hookReceiver) up() {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("listen on %s again: %v", r.addr, err)
	}
	r.serve(ln)
}

func (r *hookReceiver) set(fn func(r *hookReceiver)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r)
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		var wh *standardwebhooks.Webhook
		if wh, err = standardwebhooks.NewWebhook(r.secret); err == nil {
			err = wh.Verify(body, req.Header)
		}
	}
	if err != nil || req.Header.Get("Content-Type") != "application/json" {
		r.bad++
		http.Error(w, "signature does not verify", http.StatusBadRequest)
		return
	}
	r.posts++
	r.answered[r.status]++
	taken := r.status >= 200 && r.status < 300
	if taken {
		id := req.Header.Get("webhook-id")
		if first, seen := r.bodies[id]; seen {
			r.again[id]++
			if first != string(body) {
				r.mismatch = append(r.mismatch, id)
			}
		} else {
			r.bodies[id] = string(body)
		}
	}
	if taken && r.lose > 0 {
		// Taken, but the answer never reaches Koerier: it must post the event again.
		r.lose--
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	w.WriteHeader(r.status)
}

// webhookEvents reads the events of messages from Postgres.
func webhookEvents(t *testing.T, s *testenv.Stack, numbers ...int64) []store.WebhookEvent {
	t.Helper()
	var out []store.WebhookEvent
	for _, n := range numbers {
		var evs []store.WebhookEvent
		if err := s.Store.DB().Select(&evs, `SELECT id, message_number, endpoint_id, payload, state, attempts, last_error, created_at, sent_at
			FROM webhook_events WHERE message_number = $1 ORDER BY seq`, n); err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
	}
	return out
}

type eventData struct {
	Number         int64  `json:"number"`
	Environment    string `json:"environment"`
	Status         string `json:"status"`
	PreviousStatus string `json:"previous_status"`
}

func registerWebhook(t *testing.T, env string, r *hookReceiver) {
	t.Helper()
	var reg struct {
		Secret string `json:"secret"`
	}
	cliJSON(t, &reg, "environments", "webhook", env, "--url", r.url())
	if !strings.HasPrefix(reg.Secret, "whsec_") {
		t.Fatalf("webhook secret %q", reg.Secret)
	}
	r.set(func(r *hookReceiver) { r.secret = reg.Secret })
}

func workflowStage(t *testing.T, s *testenv.Stack, number int64) (enums.WorkflowExecutionStatus, string) {
	t.Helper()
	d, err := s.Temporal.DescribeWorkflow(context.Background(), pipeline.DeclarationID(number), "")
	if err != nil {
		return 0, err.Error()
	}
	if d.Status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return d.Status, ""
	}
	v, err := s.Temporal.QueryWorkflow(context.Background(), pipeline.DeclarationID(number), "", pipeline.QueryState)
	if err != nil {
		return d.Status, err.Error()
	}
	var st pipeline.State
	if err := v.Get(&st); err != nil {
		return d.Status, err.Error()
	}
	return d.Status, st.Stage
}

// Rule 13 (docs/rules.md): an environment's receiver answers 503, then is not there at
// all, then comes back. Every status change of its messages arrives, signed; none is
// lost; after de-duplication by webhook-id each arrives once, with the same body on
// every try, also one posted again because the receiver's answer was lost; the
// workflows wait for their webhooks before they complete.
func TestWebhooksArriveAfterAReceiverOutage(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"KOERIER_WEBHOOK_RETRY_INITIAL": "100ms"}})
	mustCLI(t, "environments", "add", "acme", "--auto-process")
	r := newHookReceiver(t)
	registerWebhook(t, "acme", r)
	r.set(func(r *hookReceiver) { r.status = http.StatusServiceUnavailable })

	// Three subjects: deliveries of one subject go one at a time.
	var numbers []int64
	for _, subject := range []string{"001000044B37", "001000045B37", "001000046B37"} {
		numbers = append(numbers, queue(t, "acme", "2022-04", "--subject", subject).Number)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range logLines(t) {
				t.Logf("log: %s %s %s | %s", l.Level, l.Step, l.Description, l.Information)
			}
		}
	})
	start := time.Now()
	// Retried while the receiver answers 503, and an accepted message waits for it in
	// the report stage. (The back-off doubles while this lasts, so it is kept short.)
	until(t, s, numbers[0], domain.StatusAccepted)
	testenv.Eventually(t, 30*time.Second, "an accepted message waits in the report stage", func() (bool, string) {
		status, stage := workflowStage(t, s, numbers[0])
		return status == enums.WORKFLOW_EXECUTION_STATUS_RUNNING && stage == pipeline.StageReporting, fmt.Sprint(status, " ", stage)
	})
	testenv.Eventually(t, 30*time.Second, "webhooks retried after 503", func() (bool, string) {
		for _, e := range webhookEvents(t, s, numbers...) {
			if e.Attempts >= 2 && strings.Contains(e.LastError, "503") {
				return true, ""
			}
		}
		return false, ""
	})
	t.Logf("503 for %s", time.Since(start).Round(time.Millisecond))

	// Not there at all, for a few seconds.
	start = time.Now()
	r.down()
	testenv.Eventually(t, 60*time.Second, "webhooks retried against a closed port", func() (bool, string) {
		for _, e := range webhookEvents(t, s, numbers...) {
			if strings.Contains(e.LastError, "connection refused") {
				return time.Since(start) > 3*time.Second, ""
			}
		}
		return false, ""
	})
	t.Logf("down for %s", time.Since(start).Round(time.Millisecond))

	// Back; the answers to its first two posts are lost, so those come twice.
	r.set(func(r *hookReceiver) { r.status, r.lose = http.StatusOK, 2 })
	r.up()
	start = time.Now()
	for _, n := range numbers[1:] {
		until(t, s, n, domain.StatusAccepted)
	}
	testenv.Eventually(t, 90*time.Second, "every event sent and every workflow completed", func() (bool, string) {
		for _, e := range webhookEvents(t, s, numbers...) {
			if e.State != store.WebhookSent {
				return false, e.ID + " " + e.State + " " + e.LastError
			}
		}
		for _, n := range numbers {
			if status, stage := workflowStage(t, s, n); status != enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
				return false, fmt.Sprint(n, " ", status, " ", stage)
			}
		}
		return true, ""
	})

	t.Logf("all delivered %s after the receiver came back", time.Since(start).Round(time.Millisecond))
	events := webhookEvents(t, s, numbers...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bad != 0 || len(r.mismatch) != 0 {
		t.Errorf("%d posts did not verify; ids that came again with another body: %v", r.bad, r.mismatch)
	}
	if r.answered[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no post met the 503: the outage did not overlap the deliveries (answered %v)", r.answered)
	}
	if len(r.again) == 0 {
		t.Errorf("no event came twice after its answer was lost (posts %v)", r.answered)
	}
	// None lost: what the receiver kept is exactly the outbox, and for each message
	// the changes chain from queued to accepted.
	var stored, received []string
	for _, e := range events {
		stored = append(stored, e.ID)
	}
	for id := range r.bodies {
		received = append(received, id)
	}
	sort.Strings(stored)
	sort.Strings(received)
	if strings.Join(stored, " ") != strings.Join(received, " ") {
		t.Fatalf("the receiver kept %v; the outbox holds %v", received, stored)
	}
	for _, n := range numbers {
		prev := "queued"
		for i, e := range webhookEvents(t, s, n) {
			if e.ID != fmt.Sprintf("evt_%d_%d", n, i+1) {
				t.Errorf("message %d event %d has id %s", n, i+1, e.ID)
			}
			var body struct {
				Data eventData `json:"data"`
			}
			if err := json.Unmarshal([]byte(r.bodies[e.ID]), &body); err != nil {
				t.Fatalf("%s: %v", e.ID, err)
			}
			d := body.Data
			if d.Number != n || d.Environment != "acme" || d.PreviousStatus != prev {
				t.Errorf("%s: %+v; want message %d from %s", e.ID, d, n, prev)
			}
			prev = d.Status
		}
		if prev != "accepted" {
			t.Errorf("message %d: the last event says %s, not accepted", n, prev)
		}
		c, err := s.Store.WebhookCountsOf(context.Background(), n)
		if err != nil || c.Pending != 0 || c.Failed != 0 || c.Sent == 0 {
			t.Errorf("message %d webhook counts %+v %v", n, c, err)
		}
	}
	t.Logf("%d events, %d posts (%v), %d duplicates dropped", len(events), r.posts, r.answered, len(r.again))
	recordHistory(t, s, pipeline.DeclarationID(numbers[0]), "declaration-webhooks")
}

// A receiver that answers 410 Gone is never posted to again: its endpoint is disabled
// with an F line, the message's events are failed, the workflow completes.
func TestWebhookReceiverGoneDisablesTheEndpoint(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"KOERIER_WEBHOOK_RETRY_INITIAL": "100ms"}})
	mustCLI(t, "environments", "add", "acme", "--auto-process")
	r := newHookReceiver(t)
	registerWebhook(t, "acme", r)
	r.set(func(r *hookReceiver) { r.status = http.StatusGone })
	n := queue(t, "acme", "2022-07").Number
	until(t, s, n, domain.StatusAccepted)
	testenv.Eventually(t, 30*time.Second, "workflow completed", func() (bool, string) {
		status, stage := workflowStage(t, s, n)
		return status == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, fmt.Sprint(status, " ", stage)
	})
	ep, err := s.Store.WebhookOf(context.Background(), "acme")
	if err != nil || ep.DisabledAt == nil || !strings.Contains(ep.DisabledReason, "410") {
		t.Fatalf("endpoint %+v %v", ep, err)
	}
	if !hasLine(logLines(t, "--level", "F"), 0, "F", "410 Gone") {
		t.Error("no F line says the receiver answered 410")
	}
	c, err := s.Store.WebhookCountsOf(context.Background(), n)
	if err != nil || c.Sent != 0 || c.Pending != 0 || c.Failed == 0 {
		t.Errorf("webhook counts %+v %v", c, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.posts != 1 || r.bad != 0 {
		t.Errorf("%d posts (%d unverified); after the 410 nothing may be posted", r.posts, r.bad)
	}
}
