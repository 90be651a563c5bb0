package bench

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"

	"koerier/domain"
	"koerier/internal/demo"
	"koerier/store"
)

// APIResult is what API mode adds: queueing through POST /v1/messages next to the
// command line's direct path (store.Queue and starting the workflow, as `starter
// queue` does), measured in alternating rounds of the same size at the same
// concurrency, and the delivery of the webhooks that processing sends.
type APIResult struct {
	Concurrency int `json:"concurrency"`
	// Requests is how many declarations were queued through the API, each with one POST.
	Requests     int     `json:"requests"`
	RequestsPerS float64 `json:"requests_per_s"`
	PostP50S     float64 `json:"post_p50_s"`
	PostP99S     float64 `json:"post_p99_s"`
	// Direct is how many were queued the command line's way, in the rounds between.
	Direct       int     `json:"direct"`
	DirectPerS   float64 `json:"direct_per_s"`
	DirectP50S   float64 `json:"direct_p50_s"`
	DirectP99S   float64 `json:"direct_p99_s"`
	RatioDirect  float64 `json:"ratio_to_direct"`
	WebhookCount int     `json:"webhook_events"`
	// Webhook latency runs from the status change the environment sees (the process
	// transaction that wrote the event to the outbox) to the moment the benchmark's
	// receiver had it: the report stage's push, retries included.
	WebhookP50S          float64 `json:"webhook_p50_s"`
	WebhookP99S          float64 `json:"webhook_p99_s"`
	WebhookDuplicates    int     `json:"webhook_duplicates"`
	WebhookBadSignatures int     `json:"webhook_bad_signatures"`
	// WebhookNotArrived counts events Koerier wrote that the receiver never had.
	WebhookNotArrived int `json:"webhook_not_arrived"`
}

// apiClient queues declarations through the API, one environment's token each. With
// several API processes (a comma-separated --api-url) it takes them in turn, as a load
// balancer in front of them would: the scale-out measurement.
type apiClient struct {
	bases  []string
	turn   atomic.Uint64
	http   *http.Client
	tokens map[string]string
}

func newAPIClient(urls string, concurrency int) *apiClient {
	// As many idle connections as requests in flight: the default of two per host would
	// open a new connection for most requests and measure TCP set-up, not the API.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = concurrency, concurrency
	c := &apiClient{http: &http.Client{Transport: tr, Timeout: time.Minute}, tokens: map[string]string{}}
	for _, u := range strings.Split(urls, ",") {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			c.bases = append(c.bases, u)
		}
	}
	return c
}

// next is the API process the next request goes to.
func (c *apiClient) next() string { return c.bases[int(c.turn.Add(1)-1)%len(c.bases)] }

func (c *apiClient) close() { c.http.CloseIdleConnections() }

func (c *apiClient) healthy(ctx context.Context) error {
	if len(c.bases) == 0 {
		return fmt.Errorf("no API address given: set --api-url (KOERIER_API_URL, which `make run` sets)")
	}
	for _, base := range c.bases {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("the API at %s does not answer: %w (start it with `make run`, or set --api-url)", base, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the API at %s/healthz answers %s: see its log", base, resp.Status)
		}
	}
	return nil
}

// queue posts one VAT return as a client would: multipart, with an Idempotency-Key,
// and returns the message number from the 201.
func (c *apiClient) queue(ctx context.Context, env, key, subject, period string) (int64, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range [][2]string{{"type", string(domain.TypeVAT)}, {"subject", subject}, {"period", period}} {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return 0, err
		}
	}
	fw, err := mw.CreateFormFile("file", "omzetbelasting.xbrl")
	if err != nil {
		return 0, err
	}
	if _, err := fw.Write(demo.VATReturn); err != nil {
		return 0, err
	}
	if err := mw.Close(); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.next()+"/v1/messages", &body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+c.tokens[env])
	req.Header.Set("Idempotency-Key", key)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST /v1/messages: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("POST /v1/messages answered %s: %s", resp.Status, b)
	}
	var a struct {
		Number int64 `json:"number"`
	}
	if err := json.Unmarshal(b, &a); err != nil || a.Number == 0 {
		return 0, fmt.Errorf("POST /v1/messages answered 201 without a number: %s", b)
	}
	return a.Number, nil
}

// receiver is the webhook endpoint of the benchmark's environments: it checks every
// post's Standard Webhooks signature with its environment's secret, drops an id it has
// seen, and notes how long after the status change each event arrived.
type receiver struct {
	srv     *http.Server
	url     string
	secrets map[string]string // environment → whsec_ secret; written before the first post

	mu      sync.Mutex
	arrived map[string]time.Time // event id → first arrival
	dupes   int
	badSigs int
}

func startReceiver() (*receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for webhooks: %w", err)
	}
	r := &receiver{url: "http://" + l.Addr().String() + "/webhook", secrets: map[string]string{}, arrived: map[string]time.Time{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(l) }()
	return r, nil
}

func (r *receiver) close() { _ = r.srv.Close() }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	arrived := time.Now()
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	var ev struct {
		Data struct {
			Environment string `json:"environment"`
		} `json:"data"`
	}
	id := req.Header.Get("webhook-id")
	if err := json.Unmarshal(body, &ev); err != nil || id == "" {
		http.Error(w, "not a Standard Webhooks event", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !verifySignature(r.secrets[ev.Data.Environment], id, req.Header.Get("webhook-timestamp"), body, req.Header.Get("webhook-signature")) {
		r.badSigs++
		// A 400 makes Koerier retry it: a bad signature shows in the figures, not as loss.
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	if _, ok := r.arrived[id]; ok {
		r.dupes++
	} else {
		r.arrived[id] = arrived
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.arrived)
}

// verifySignature checks a Standard Webhooks v1 signature: base64 of HMAC-SHA256 over
// "id.timestamp.body", keyed with the base64-decoded secret after "whsec_". The header
// may carry several signatures, space-separated (while a secret is being rotated).
func verifySignature(secret, id, timestamp string, body []byte, header string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || secret == "" || timestamp == "" {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(header) {
		if v, s, ok := strings.Cut(sig, ","); ok && v == "v1" && hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}

// prepareAPI gives every environment a token and registers the receiver as its
// webhook endpoint.
func prepareAPI(ctx context.Context, st *store.Store, c *apiClient, r *receiver, envs []string) error {
	for _, env := range envs {
		_, secret, err := st.IssueToken(ctx, env)
		if err != nil {
			return err
		}
		c.tokens[env] = secret
		ep, err := st.SetWebhook(ctx, env, r.url)
		if err != nil {
			return err
		}
		r.secrets[env] = ep.Secret
	}
	return nil
}

// rounds splits 0..n-1 into consecutive chunks of (nearly) one size, a multiple of
// four of them, for direct and API in the order D A A D D A A D …: neither path always
// runs while the workflows the other just started are busy. A chunk holds at least four
// requests per worker where n allows, so that each path runs at the full concurrency.
func rounds(n, concurrency int) [][2]int {
	chunks := 4 * max(1, min(5, n/(16*concurrency)))
	if n < chunks {
		chunks = 2
	}
	out := make([][2]int, 0, chunks)
	for k := 0; k < chunks; k++ {
		lo, hi := n*k/chunks, n*(k+1)/chunks
		if hi > lo {
			out = append(out, [2]int{lo, hi})
		}
	}
	return out
}

// viaAPI says whether chunk k of rounds goes through the API.
func viaAPI(k int) bool { return k%4 == 1 || k%4 == 2 }

// webhookState counts the benchmark's events in the outbox.
func webhookState(ctx context.Context, st *store.Store, envs []string) (total, pending int, err error) {
	var row struct {
		Total   int `db:"total"`
		Pending int `db:"pending"`
	}
	err = st.DB().GetContext(ctx, &row, `SELECT count(*) AS total, count(*) FILTER (WHERE ev.state = 'pending') AS pending
		FROM webhook_events ev JOIN messages m ON m.number = ev.message_number JOIN environments e ON e.id = m.environment_id
		WHERE e.name = ANY($1)`, pq.Array(envs))
	return row.Total, row.Pending, err
}

// webhookLatencies is, for every event the receiver had, the time from its writing
// into the outbox to its arrival, sorted.
func webhookLatencies(ctx context.Context, st *store.Store, r *receiver, envs []string) ([]float64, error) {
	var rows []struct {
		ID      string    `db:"id"`
		Created time.Time `db:"created_at"`
	}
	if err := st.DB().SelectContext(ctx, &rows, `SELECT ev.id, ev.created_at FROM webhook_events ev
		JOIN messages m ON m.number = ev.message_number JOIN environments e ON e.id = m.environment_id
		WHERE e.name = ANY($1)`, pq.Array(envs)); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []float64
	for _, row := range rows {
		if at, ok := r.arrived[row.ID]; ok {
			out = append(out, at.Sub(row.Created).Seconds())
		}
	}
	sort.Float64s(out)
	return out, nil
}

// awaitWebhooks waits until Koerier has no event of the benchmark pending and the
// receiver has every one it wrote, or until wait has passed.
func awaitWebhooks(ctx context.Context, st *store.Store, r *receiver, envs []string, wait time.Duration) (total int, err error) {
	deadline := time.Now().Add(wait)
	for {
		total, pending, err := webhookState(ctx, st, envs)
		if err != nil {
			return 0, err
		}
		if (pending == 0 && r.received() >= total) || time.Now().After(deadline) {
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, errors.Join(ctx.Err(), fmt.Errorf("waiting for webhooks: %d of %d arrived", r.received(), total))
		case <-time.After(250 * time.Millisecond):
		}
	}
}
