package activities_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// post is one request the test receiver got.
type post struct {
	id, timestamp, contentType string
	body                       []byte
	verified                   error
}

// receiver is an environment's webhook endpoint: it verifies every post with the
// Standard Webhooks reference library (not with Koerier's own signing), records it,
// and answers with the status the test sets.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	status int
	posts  []post
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, status: http.StatusNoContent}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		p := post{id: req.Header.Get("webhook-id"), timestamp: req.Header.Get("webhook-timestamp"),
			contentType: req.Header.Get("Content-Type"), body: body}
		wh, err := standardwebhooks.NewWebhook(r.secret)
		if err == nil {
			err = wh.Verify(body, req.Header)
		}
		p.verified = err
		r.posts = append(r.posts, p)
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) answer(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = status
}

func (r *receiver) got() []post {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]post(nil), r.posts...)
}

// register makes url the test environment's endpoint (the receiver's secret from now on).
func (h *harness) register(r *receiver, url string) store.WebhookEndpoint {
	h.t.Helper()
	ep, err := h.st.SetWebhook(ctx, testEnv, url)
	if err != nil {
		h.t.Fatal(err)
	}
	if r != nil {
		r.mu.Lock()
		r.secret = ep.Secret
		r.mu.Unlock()
	}
	return ep
}

// processed delivers a message and processes it: one event (queued → sent) pending.
func (h *harness) processed(subject, kenmerk string) int64 {
	h.t.Helper()
	n := h.delivered(subject, kenmerk)
	if _, err := h.st.Process(ctx, n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// confirmed applies Digipoort's 100 to the message and processes it: a second event.
func (h *harness) confirmed(n int64, kenmerk string) {
	h.t.Helper()
	if _, err := h.st.ApplyReplies(ctx, []store.Reply{store.ReplyFromCode(kenmerk, "100", time.Now())}); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.st.Process(ctx, n); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) webhooks(n int64) (pipeline.WebhookResult, error) {
	h.t.Helper()
	return run[pipeline.WebhookResult](h, h.acts.DeliverWebhooks, n)
}

func (h *harness) counts(n int64) store.WebhookCounts {
	h.t.Helper()
	c, err := h.st.WebhookCountsOf(ctx, n)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// event reads one event's row.
func (h *harness) event(id string) (attempts int, lastError, state string) {
	h.t.Helper()
	row := struct {
		Attempts  int    `db:"attempts"`
		LastError string `db:"last_error"`
		State     string `db:"state"`
	}{}
	if err := h.st.DB().GetContext(ctx, &row, `SELECT attempts, last_error, state FROM webhook_events WHERE id = $1`, id); err != nil {
		h.t.Fatal(err)
	}
	return row.Attempts, row.LastError, row.State
}

// A post the receiver takes: signed the Standard Webhooks way (the reference library
// verifies it), the stored body byte for byte, the event's stable id; the event is
// sent and not posted again.
func TestDeliverWebhooksSignedAndSent(t *testing.T) {
	h := newHarness(t)
	r := newReceiver(t)
	h.register(r, r.srv.URL+"/hooks")
	n := h.processed("1", "KM-1")
	pending, _, err := h.st.PendingWebhookEvents(ctx, n)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending %+v %v", pending, err)
	}
	res, err := h.webhooks(n)
	if err != nil || res.Sent != 1 || res.Disabled {
		t.Fatalf("deliver: %+v %v", res, err)
	}
	posts := r.got()
	if len(posts) != 1 {
		t.Fatalf("%d posts", len(posts))
	}
	p := posts[0]
	if p.verified != nil {
		t.Fatalf("the reference library refuses the signature: %v", p.verified)
	}
	if p.id != fmt.Sprintf("evt_%d_1", n) || p.contentType != "application/json" || string(p.body) != string(pending[0].Payload) {
		t.Errorf("post: id %q, content type %q, body %s; want the stored %s", p.id, p.contentType, p.body, pending[0].Payload)
	}
	if ts, err := strconv.ParseInt(p.timestamp, 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("webhook-timestamp %q: want the unix time of the attempt", p.timestamp)
	}
	var body struct {
		Type string `json:"type"`
		Data struct {
			Number   int64  `json:"number"`
			Status   string `json:"status"`
			Previous string `json:"previous_status"`
		} `json:"data"`
	}
	if err := json.Unmarshal(p.body, &body); err != nil || body.Type != "message.status_changed" || body.Data.Number != n ||
		body.Data.Status != "sent" || body.Data.Previous != "queued" {
		t.Errorf("body %s (%v)", p.body, err)
	}
	if c := h.counts(n); c != (store.WebhookCounts{Sent: 1}) {
		t.Errorf("counts %+v", c)
	}
	// Again: nothing pending, nothing posted.
	if res, err := h.webhooks(n); err != nil || res.Sent != 0 || len(r.got()) != 1 {
		t.Errorf("second delivery: %+v %v, %d posts", res, err, len(r.got()))
	}
}

// A receiver that answers 5xx, or is not there at all, costs an attempt on the event
// and a retryable error that says what happened (without the URL's path or query);
// the later event waits, so that the receiver sees them in order; once it is back
// both arrive.
func TestDeliverWebhooksRetriedWhileTheReceiverIsDown(t *testing.T) {
	h := newHarness(t)
	r := newReceiver(t)
	h.register(r, r.srv.URL+"/hooks?key=receivers-own-secret")
	n := h.processed("1", "KM-1")
	h.confirmed(n, "KM-1")
	first, second := fmt.Sprintf("evt_%d_1", n), fmt.Sprintf("evt_%d_2", n)

	r.answer(http.StatusServiceUnavailable)
	_, err := h.webhooks(n)
	requireRetryable(t, err, "503 Service Unavailable")
	if got := r.got(); len(got) != 1 || got[0].id != first {
		t.Fatalf("posts while down: %+v; want only the first event", got)
	}
	if attempts, last, state := h.event(first); attempts != 1 || !strings.Contains(last, "503") || state != store.WebhookPending {
		t.Errorf("first event: %d attempts, %q, %s", attempts, last, state)
	}

	// Down altogether: connection refused.
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/hooks?key=receivers-own-secret"
	down.Close()
	h.register(r, downURL)
	_, err = h.webhooks(n)
	requireRetryable(t, err, "connection refused")
	attempts, last, _ := h.event(first)
	if attempts != 2 || !strings.Contains(last, "connection refused") || strings.Contains(last, "receivers-own-secret") || strings.Contains(last, "/hooks") {
		t.Errorf("first event: %d attempts, last error %q; want 2, connection refused, no path or query", attempts, last)
	}
	if strings.Contains(err.Error(), "receivers-own-secret") {
		t.Errorf("the error shows the URL's query: %v", err)
	}

	// Back.
	h.register(r, r.srv.URL+"/hooks")
	r.answer(http.StatusOK)
	res, err := h.webhooks(n)
	if err != nil || res.Sent != 2 {
		t.Fatalf("after the receiver came back: %+v %v", res, err)
	}
	got := r.got()
	if len(got) != 3 || got[1].id != first || got[2].id != second {
		t.Fatalf("posts: %+v", got)
	}
	for _, p := range got[1:] {
		if p.verified != nil {
			t.Errorf("%s: %v", p.id, p.verified)
		}
	}
	if c := h.counts(n); c != (store.WebhookCounts{Sent: 2}) {
		t.Errorf("counts %+v", c)
	}
}

// 410 Gone: the endpoint is disabled, every pending event failed with an F line, and
// that is final — no error for Temporal to retry, no more posts, no new events.
func TestDeliverWebhooksGoneDisablesTheEndpoint(t *testing.T) {
	h := newHarness(t)
	r := newReceiver(t)
	h.register(r, r.srv.URL)
	n := h.processed("1", "KM-1")
	h.confirmed(n, "KM-1")
	r.answer(http.StatusGone)
	res, err := h.webhooks(n)
	if err != nil || !res.Disabled || res.Sent != 0 {
		t.Fatalf("410: %+v %v", res, err)
	}
	if len(r.got()) != 1 {
		t.Errorf("%d posts; the second event must not be posted after a 410", len(r.got()))
	}
	ep, err := h.st.WebhookOf(ctx, testEnv)
	if err != nil || ep.DisabledAt == nil || !strings.Contains(ep.DisabledReason, "410") {
		t.Fatalf("endpoint %+v %v", ep, err)
	}
	if c := h.counts(n); c != (store.WebhookCounts{Failed: 2}) {
		t.Errorf("counts %+v", c)
	}
	h.requireLog(n, domain.LevelError, "410 Gone", 2)
	// Nothing more to post, and the next change writes no event.
	if res, err := h.webhooks(n); err != nil || res.Disabled || len(r.got()) != 1 {
		t.Errorf("after 410: %+v %v, %d posts", res, err, len(r.got()))
	}
	m := h.delivered("2", "KM-2")
	if _, err := h.st.Process(ctx, m); err != nil {
		t.Fatal(err)
	}
	if c := h.counts(m); c != (store.WebhookCounts{}) {
		t.Errorf("a disabled endpoint got an event: %+v", c)
	}
}

// A redirect is not followed: the signed body goes only where the environment said.
func TestDeliverWebhooksFollowsNoRedirect(t *testing.T) {
	h := newHarness(t)
	elsewhere := newReceiver(t)
	mover := httptest.NewServer(http.RedirectHandler(elsewhere.srv.URL, http.StatusTemporaryRedirect))
	t.Cleanup(mover.Close)
	h.register(nil, mover.URL)
	n := h.processed("1", "KM-1")
	_, err := h.webhooks(n)
	requireRetryable(t, err, "redirects are not followed")
	if len(elsewhere.got()) != 0 {
		t.Errorf("the redirect was followed")
	}
	if c := h.counts(n); c != (store.WebhookCounts{Pending: 1}) {
		t.Errorf("counts %+v", c)
	}
}

// When the retries run out the workflow fails what is still pending: each event with
// an F line that gives the reason.
func TestFailWebhooksAfterTheRetries(t *testing.T) {
	h := newHarness(t)
	r := newReceiver(t)
	h.register(r, r.srv.URL)
	n := h.processed("1", "KM-1")
	h.confirmed(n, "KM-1")
	failed, err := run[int](h, h.acts.FailWebhooks, n, "not taken in 96h of retries: answered 503 Service Unavailable")
	if err != nil || failed != 2 {
		t.Fatalf("FailWebhooks: %d %v", failed, err)
	}
	if c := h.counts(n); c != (store.WebhookCounts{Failed: 2}) {
		t.Errorf("counts %+v", c)
	}
	h.requireLog(n, domain.LevelError, "96h of retries", 2)
	if len(r.got()) != 0 {
		t.Errorf("FailWebhooks posted")
	}
}

// Process reports what waits to be posted, so that the workflow runs the report stage
// only for an environment with an endpoint — and counts it, so that a retried Process
// (which changes nothing the second time) still reports the first try's event.
func TestProcessReportsPendingWebhooks(t *testing.T) {
	h := newHarness(t)
	n := h.delivered("1", "KM-1")
	res, err := run[pipeline.ProcessResult](h, h.acts.Process, n)
	if err != nil || !res.Changed || res.WebhooksPending != 0 {
		t.Fatalf("without an endpoint: %+v %v", res, err)
	}
	r := newReceiver(t)
	h.register(r, r.srv.URL)
	m := h.delivered("2", "KM-2")
	for i := 0; i < 2; i++ {
		res, err := run[pipeline.ProcessResult](h, h.acts.Process, m)
		if err != nil || res.Changed != (i == 0) || res.WebhooksPending != 1 {
			t.Fatalf("process %d with an endpoint: %+v %v", i+1, res, err)
		}
	}
}

// Events pending for over an hour get their workflow asked (with start) to post them —
// it may have been terminated — and events no delivery took in five days are failed
// with an F line, so none shows as pending for good.
func TestSweepAsksForStaleWebhookEventsAndExpiresOldOnes(t *testing.T) {
	h := newHarness(t)
	r := newReceiver(t)
	h.register(r, r.srv.URL)
	stale := h.processed(vatNumber("1"), "K1")
	fresh := h.processed(vatNumber("2"), "K2")
	old := h.processed(vatNumber("3"), "K3")
	h.exec(`UPDATE webhook_events SET created_at = now() - interval '2 hours' WHERE message_number = $1`, stale)
	h.exec(`UPDATE webhook_events SET created_at = now() - interval '6 days' WHERE message_number = $1`, old)
	h.tc.reset()

	if _, err := run[struct{}](h, h.acts.SignalPendingReplies); err != nil {
		t.Fatal(err)
	}
	var asked []string
	for _, c := range h.tc.signals() {
		if c.signal == pipeline.SignalDeliverWebhooks {
			asked = append(asked, c.workflowID)
		}
	}
	if len(asked) != 1 || asked[0] != pipeline.DeclarationID(stale) {
		t.Errorf("asked %v, want only message %d (fresh %d is its workflow's own business, old %d is expired)", asked, stale, fresh, old)
	}
	if c := h.counts(old); c.Failed != 1 || c.Pending != 0 {
		t.Errorf("old message's events: %+v", c)
	}
	if c := h.counts(fresh); c.Pending != 1 {
		t.Errorf("fresh message's events: %+v", c)
	}
	h.requireLog(old, domain.LevelError, "no delivery took it within", 1)
}
