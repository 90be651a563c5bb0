package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"koerier/api"
	"koerier/domain"
	"koerier/internal/temporalclient"
	"koerier/internal/testenv"
	"koerier/pipeline"
	"koerier/store"
)

// The API tests run the real koerier-api binary against the stack's Postgres and
// Temporal and talk real HTTP to it; every answer is checked against the OpenAPI
// document (api/openapi.json) with kin-openapi.

var (
	apiBuildOnce sync.Once
	apiBin       string
	apiBuildErr  error
)

// apiBinary builds koerier-api once per package run, beside starter and worker.
func apiBinary(t *testing.T) string {
	t.Helper()
	apiBuildOnce.Do(func() {
		apiBin = filepath.Join(binDir, "koerier-api")
		out, err := exec.Command("go", "build", "-o", apiBin, "koerier/api/cmd/koerier-api").CombinedOutput()
		if err != nil {
			apiBuildErr = fmt.Errorf("build koerier-api: %v: %s", err, out)
		}
	})
	if apiBuildErr != nil {
		t.Fatal(apiBuildErr)
	}
	return apiBin
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var apiListening = regexp.MustCompile(`koerier API listening.*addr="?(127\.0\.0\.1:[0-9]+)`)

// startAPI runs koerier-api with the stack's configuration (testenv put it in the
// environment) on a port the kernel picks, and returns its base URL once /healthz
// answers. The process is stopped with SIGTERM at the end of the test.
func startAPI(t *testing.T, s *testenv.Stack) string {
	t.Helper()
	if s.Worker == nil {
		// The worker registers the search attributes workflows are started with; a stack
		// without one needs them for the workflows the API starts and signals.
		if err := temporalclient.EnsureSearchAttributes(context.Background(), s.Temporal, s.Namespace); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(apiBinary(t), "-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "KOERIER_LOG_LEVEL=info")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("koerier-api did not stop cleanly on SIGTERM: %v", err)
			}
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("koerier-api did not stop within 40s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("koerier-api output:\n%s", out.String())
		}
	})
	var base string
	testenv.Eventually(t, 30*time.Second, "koerier-api listening", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("koerier-api exited: %v\n%s", err, out.String())
		default:
		}
		m := apiListening.FindStringSubmatch(out.String())
		if m == nil {
			return false, out.String()
		}
		base = "http://" + m[1]
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return base
}

var (
	openAPIOnce   sync.Once
	openAPIRouter routers.Router
	openAPIErr    error
)

// apiRouter finds a request's operation in the OpenAPI document.
func apiRouter(t *testing.T) routers.Router {
	t.Helper()
	openAPIOnce.Do(func() {
		var doc *openapi3.T
		if doc, openAPIErr = openapi3.NewLoader().LoadFromData(api.OpenAPI); openAPIErr == nil {
			openAPIRouter, openAPIErr = legacy.NewRouter(doc)
		}
	})
	if openAPIErr != nil {
		t.Fatalf("api/openapi.json: %v", openAPIErr)
	}
	return openAPIRouter
}

// apiReply is an answer with its body read.
type apiReply struct {
	*http.Response
	Body []byte
}

func (r apiReply) problem(t *testing.T) api.Problem {
	t.Helper()
	var p api.Problem
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: Content-Type %q, want application/problem+json: %s", r.Status, ct, r.Body)
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem %s: %v", r.Body, err)
	}
	if p.Status != r.StatusCode || p.Detail == "" || !strings.HasPrefix(p.Type, "tag:koerier,2026:problem:") {
		t.Errorf("problem %+v does not match its answer %s", p, r.Status)
	}
	return p
}

// expect fails the test unless the answer has the status and, for an error, is a
// problem of the type.
func (r apiReply) expect(t *testing.T, status int, problem string) api.Problem {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: got %s, want %d: %s", r.Request.Method, r.Request.URL.Path, r.Status, status, r.Body)
	}
	if status < 400 {
		return api.Problem{}
	}
	p := r.problem(t)
	if problem != "" && p.Type != "tag:koerier,2026:problem:"+problem {
		t.Errorf("%s %s: problem type %s, want %s", r.Request.Method, r.Request.URL.Path, p.Type, problem)
	}
	return p
}

func (r apiReply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// apiClient calls the API as one environment; every answer is validated against the
// OpenAPI document.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

// validate checks an answer against the operation the OpenAPI document has for its
// request: status documented, headers and body as described.
func validate(t *testing.T, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	route, params, err := apiRouter(t).FindRoute(req)
	if err != nil {
		t.Errorf("%s %s is not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s answered %s, which the OpenAPI document does not allow: %v\n%s", req.Method, req.URL.Path, resp.Status, err, body)
	}
}

func (c apiClient) do(req *http.Request) apiReply {
	c.t.Helper()
	r := c.send(req)
	validate(c.t, req, r.Response, r.Body)
	return r
}

// send is do without the OpenAPI check, for requests the document has no operation for.
func (c apiClient) send(req *http.Request) apiReply {
	c.t.Helper()
	if c.token != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read the answer: %v", req.Method, req.URL, err)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		c.t.Errorf("%s %s: no X-Request-Id", req.Method, req.URL.Path)
	}
	return apiReply{resp, body}
}

func (c apiClient) request(method, path string, body io.Reader, contentType string) *http.Request {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

func (c apiClient) get(path string) apiReply { return c.do(c.request(http.MethodGet, path, nil, "")) }

func (c apiClient) post(path string) apiReply { return c.do(c.request(http.MethodPost, path, nil, "")) }

// apiFile is one file part of a queue request.
type apiFile struct {
	name, mimeType string
	content        []byte
}

// queueForm is a multipart queue request as curl -F builds it.
func queueForm(t *testing.T, fields map[string]string, files ...apiFile) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, k := range []string{"type", "subject", "period", "memo"} {
		if v, ok := fields[k]; ok {
			if err := w.WriteField(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, f.name))
		if f.mimeType != "" {
			h.Set("Content-Type", f.mimeType)
		}
		part, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := part.Write(f.content); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

func vatFields(period string) map[string]string {
	return map[string]string{"type": "btw", "subject": "001000044B37", "period": period, "memo": "via the API"}
}

func vatFile(t *testing.T) apiFile {
	t.Helper()
	content, err := os.ReadFile(vatReturn(t))
	if err != nil {
		t.Fatal(err)
	}
	return apiFile{name: filepath.Base(vatReturn(t)), content: content} // no type: curl sends none it knows for .xbrl
}

// queueVAT queues the VAT return for period as a multipart request.
func (c apiClient) queueVAT(period, key string) apiReply {
	c.t.Helper()
	body, ct := queueForm(c.t, vatFields(period), vatFile(c.t))
	req := c.request(http.MethodPost, "/v1/messages", bytes.NewReader(body), ct)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return c.do(req)
}

type apiQueued struct {
	Number    int64  `json:"number"`
	Version   int    `json:"version"`
	Status    string `json:"status"`
	DoNotSend bool   `json:"do_not_send"`
}

// apiEnv adds an environment and issues its token, as an operator does.
func apiEnv(t *testing.T, s *testenv.Stack, base string, e store.Environment) apiClient {
	t.Helper()
	if _, err := s.Store.AddEnvironment(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	_, token, err := s.Store.IssueToken(context.Background(), e.Name)
	if err != nil {
		t.Fatal(err)
	}
	return apiClient{t: t, base: base, token: token}
}

func (c apiClient) messages(query string) (out struct {
	Messages   []store.APIMessage `json:"messages"`
	NextCursor string             `json:"next_cursor"`
}) {
	c.t.Helper()
	r := c.get("/v1/messages" + query)
	r.expect(c.t, http.StatusOK, "")
	r.decode(c.t, &out)
	return out
}

// Another environment's message answers 404, byte for byte as a missing one does, in
// every endpoint; its Idempotency-Key is its own; its list never shows it.
func TestAPIIsolation(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{NoWorker: true})
	base := startAPI(t, s)
	acme := apiEnv(t, s, base, store.Environment{Name: "acme"})
	beta := apiEnv(t, s, base, store.Environment{Name: "beta", AutoProcess: true})

	var a apiQueued
	r := acme.queueVAT("2021-10", "ref-1")
	r.expect(t, http.StatusCreated, "")
	r.decode(t, &a)
	var docs struct {
		Documents []store.APIDocument `json:"documents"`
	}
	acme.get(fmt.Sprintf("/v1/messages/%d/documents", a.Number)).decode(t, &docs)
	if len(docs.Documents) != 1 {
		t.Fatalf("acme's documents: %+v", docs)
	}
	docID := docs.Documents[0].ID
	acme.get(fmt.Sprintf("/v1/messages/%d", a.Number)).expect(t, http.StatusOK, "")

	// The same key in another environment is another message.
	var b apiQueued
	r = beta.queueVAT("2021-10", "ref-1")
	r.expect(t, http.StatusCreated, "")
	r.decode(t, &b)
	if b.Number == a.Number || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("beta's queue under acme's key answered acme's message: %s", r.Body)
	}

	missing := b.Number + 1000
	for _, c := range []struct {
		who          apiClient
		theirs, mine int64
	}{{beta, a.Number, b.Number}, {acme, b.Number, a.Number}} {
		for _, path := range []string{"/v1/messages/%d", "/v1/messages/%d/documents", "/v1/messages/%d/documents/" + fmt.Sprint(docID)} {
			other := c.who.get(fmt.Sprintf(path, c.theirs))
			other.expect(t, http.StatusNotFound, "not-found")
			none := c.who.get(fmt.Sprintf(path, missing))
			none.expect(t, http.StatusNotFound, "not-found")
			if !bytes.Equal(other.Body, none.Body) {
				t.Errorf("%s: another environment's message answers\n%s\nbut a missing one\n%s", path, other.Body, none.Body)
			}
		}
		other := c.who.post(fmt.Sprintf("/v1/messages/%d/process", c.theirs))
		none := c.who.post(fmt.Sprintf("/v1/messages/%d/process", missing))
		other.expect(t, http.StatusNotFound, "not-found")
		if !bytes.Equal(other.Body, none.Body) || other.StatusCode != none.StatusCode {
			t.Errorf("process: another environment's message answers %s %s but a missing one %s %s", other.Status, other.Body, none.Status, none.Body)
		}
		for _, q := range []string{"", "?status=queued", "?type=btw", "?since=2000-01-01"} {
			list := c.who.messages(q)
			if len(list.Messages) != 1 || list.Messages[0].Number != c.mine {
				t.Errorf("list%s shows %+v, want only message %d", q, list.Messages, c.mine)
			}
		}
	}
	// A document id of acme's under beta's own message is not beta's document.
	other := beta.get(fmt.Sprintf("/v1/messages/%d/documents/%d", b.Number, docID))
	none := beta.get(fmt.Sprintf("/v1/messages/%d/documents/%d", b.Number, docID+1000))
	other.expect(t, http.StatusNotFound, "not-found")
	if !bytes.Equal(other.Body, none.Body) {
		t.Errorf("acme's document under beta's message answers %s, a missing one %s", other.Body, none.Body)
	}

	// Process: refused for an auto-process environment; accepted for one that processes by hand.
	beta.post(fmt.Sprintf("/v1/messages/%d/process", b.Number)).expect(t, http.StatusConflict, "auto-process")
	r = acme.post(fmt.Sprintf("/v1/messages/%d/process", a.Number))
	r.expect(t, http.StatusAccepted, "")
	if loc := r.Header.Get("Location"); loc != fmt.Sprintf("/v1/messages/%d", a.Number) {
		t.Errorf("process Location %q", loc)
	}
}

// Without a valid token nothing is answered but 401, the same for every way a token
// can be wrong; a revoked token and one of a removed environment stop working at once.
func TestAPIAuthentication(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{NoWorker: true})
	base := startAPI(t, s)
	acme := apiEnv(t, s, base, store.Environment{Name: "acme"})
	gone := apiEnv(t, s, base, store.Environment{Name: "gone"})
	var q apiQueued
	acme.queueVAT("2021-10", "").decode(t, &q)
	msg := fmt.Sprintf("/v1/messages/%d", q.Number)

	anon := apiClient{t: t, base: base}
	endpoints := []struct{ method, path string }{
		{"GET", "/v1/messages"}, {"POST", "/v1/messages"}, {"GET", msg}, {"GET", msg + "/documents"},
		{"GET", msg + "/documents/1"}, {"POST", msg + "/process"},
	}
	for _, e := range endpoints {
		r := anon.do(anon.request(e.method, e.path, nil, ""))
		r.expect(t, http.StatusUnauthorized, "unauthorized")
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s %s: WWW-Authenticate %q", e.method, e.path, r.Header.Get("WWW-Authenticate"))
		}
	}

	_, extra, err := s.Store.IssueToken(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	apiClient{t: t, base: base, token: extra}.get(msg).expect(t, http.StatusOK, "")
	tokens, err := s.Store.Tokens(context.Background(), "acme")
	if err != nil || len(tokens) != 2 {
		t.Fatalf("tokens: %v %v", tokens, err)
	}
	if err := s.Store.RevokeToken(context.Background(), "acme", tokens[1].ID); err != nil {
		t.Fatal(err)
	}
	gone.get("/v1/messages").expect(t, http.StatusOK, "")
	if _, err := s.Store.RemoveEnvironment(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}

	var bodies []string
	for _, header := range []string{
		"Bearer " + extra,                          // revoked
		"Bearer " + gone.token,                     // its environment was removed
		"Bearer kt_" + strings.Repeat("A", 43),     // well-formed, unknown
		"Bearer " + acme.token[:len(acme.token)-1], // cut short
		"Bearer " + acme.token + "x",
		"Bearer " + strings.ToUpper(acme.token),
		"Bearer not-a-token",
	} {
		req := anon.request("GET", msg, nil, "")
		req.Header.Set("Authorization", header)
		r := anon.do(req)
		r.expect(t, http.StatusUnauthorized, "unauthorized")
		bodies = append(bodies, string(r.Body))
	}
	for i, b := range bodies {
		if b != bodies[0] {
			t.Errorf("bad token %d answers %s, token 0 %s: every bad token must be answered alike", i, b, bodies[0])
		}
	}
	for _, header := range []string{"Basic YWNtZTpzZWNyZXQ=", "Bearer", "Bearer ", "Token " + acme.token, acme.token, "Bearer " + acme.token + " x"} {
		req := anon.request("GET", msg, nil, "")
		req.Header.Set("Authorization", header)
		anon.do(req).expect(t, http.StatusUnauthorized, "unauthorized")
	}
	// The scheme is case-insensitive (RFC 9110); the token is not.
	req := anon.request("GET", msg, nil, "")
	req.Header.Set("Authorization", "bearer "+acme.token)
	anon.do(req).expect(t, http.StatusOK, "")
}

// Twenty clients retrying one queue request at once make one message, and all get its
// answer; the key with other content is 409; a later retry gets the first answer.
func TestAPIIdempotencyUnderParallelRetries(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{NoWorker: true})
	base := startAPI(t, s)
	acme := apiEnv(t, s, base, store.Environment{Name: "acme"})

	const n = 20
	replies := make([]apiReply, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			replies[i] = acme.queueVAT("2021-10", "bookkeeping-2021-10")
		}()
	}
	close(start)
	wg.Wait()
	first := -1
	for i, r := range replies {
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("retry %d: %s %s", i, r.Status, r.Body)
		}
		if r.Header.Get("Idempotent-Replayed") == "" {
			if first >= 0 {
				t.Errorf("retries %d and %d both queued a message: %s %s", first, i, replies[first].Body, r.Body)
			}
			first = i
		}
	}
	if first < 0 {
		t.Fatal("every answer says it was replayed: none queued the message")
	}
	for i, r := range replies {
		if !bytes.Equal(r.Body, replies[first].Body) || r.Header.Get("Location") != replies[first].Header.Get("Location") {
			t.Errorf("retry %d answered %s (Location %s), the first %s (Location %s)", i, r.Body, r.Header.Get("Location"),
				replies[first].Body, replies[first].Header.Get("Location"))
		}
	}
	if list := acme.messages(""); len(list.Messages) != 1 {
		t.Fatalf("%d parallel retries stored %d messages: %+v", n, len(list.Messages), list.Messages)
	}
	view, err := s.Store.EnvironmentView(context.Background(), "acme", 0)
	if err != nil || len(view) != 1 {
		t.Fatalf("the store holds %d messages (%v)", len(view), err)
	}

	// Other content under the key: refused, nothing stored.
	acme.queueVAT("2021-11", "bookkeeping-2021-10").expect(t, http.StatusConflict, "idempotency-conflict")
	// Later, the same: the first answer again.
	r := acme.queueVAT("2021-10", "bookkeeping-2021-10")
	r.expect(t, http.StatusCreated, "")
	if !bytes.Equal(r.Body, replies[first].Body) || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("a later retry answered %s, the first %s", r.Body, replies[first].Body)
	}
	if list := acme.messages(""); len(list.Messages) != 1 {
		t.Fatalf("after the conflict the environment has %d messages", len(list.Messages))
	}
}

// rawPost writes a request's head and then streams body in the background, and returns
// the answer as soon as it comes, with how many body bytes had been written by then: the
// proof that the API answered before reading the whole body.
func rawPost(t *testing.T, base, path string, header http.Header, body io.Reader) (apiReply, int64) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, err := http.NewRequest(http.MethodPost, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	var head bytes.Buffer
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\n", path, addr)
	if err := header.Write(&head); err != nil {
		t.Fatal(err)
	}
	head.WriteString("\r\n")
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	var written atomic.Int64
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if body == nil {
			return
		}
		var w io.Writer = conn
		chunked := header.Get("Transfer-Encoding") == "chunked"
		var cw io.WriteCloser
		if chunked {
			cw = httputil.NewChunkedWriter(conn)
			w = cw
		}
		buf := make([]byte, 64<<10)
		for {
			n, rerr := body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return // the server has answered and closed: what it refused is not sent on
				}
				written.Add(int64(n))
			}
			if rerr != nil {
				break
			}
		}
		if chunked {
			_ = cw.Close()
			_, _ = io.WriteString(conn, "\r\n")
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("POST %s: no answer: %v", path, err)
	}
	sent := written.Load()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read the answer: %v", path, err)
	}
	conn.Close()
	<-stopped
	validate(t, req, resp, b)
	return apiReply{resp, b}, sent
}

// endless is an upload that would go on long after any limit.
type endless struct{ left int64 }

func (e *endless) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), e.left)
	for i := range p[:n] {
		p[i] = 'x'
	}
	e.left -= n
	return int(n), nil
}

// The limits hold while the body is read: over 20 MiB a file is refused at its limit,
// over the request cap the request is refused, a Content-Length over the cap before a
// byte is read; nothing is stored by any of them.
func TestAPIRefusesWhatIsTooLarge(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{NoWorker: true})
	base := startAPI(t, s)
	acme := apiEnv(t, s, base, store.Environment{Name: "acme"})

	// One byte over Digipoort's limit, with an honest Content-Length.
	huge := make([]byte, domain.MaxAttachmentSize+1)
	copy(huge, "<a>")
	body, ct := queueForm(t, vatFields("2021-10"), vatFile(t), apiFile{name: "big.xml", mimeType: "application/xml", content: huge})
	r := acme.do(acme.request(http.MethodPost, "/v1/messages", bytes.NewReader(body), ct))
	p := r.expect(t, http.StatusRequestEntityTooLarge, "too-large")
	if !strings.Contains(p.Detail, "big.xml is over Digipoort's limit of 20 MiB") {
		t.Errorf("detail: %s", p.Detail)
	}

	auth := func(ct string) http.Header {
		h := http.Header{}
		h.Set("Authorization", "Bearer "+acme.token)
		h.Set("Content-Type", ct)
		return h
	}
	// A file that never ends: refused at 20 MiB + 1 byte, long before the client is done.
	var mw bytes.Buffer
	w := multipart.NewWriter(&mw)
	_ = w.WriteField("type", "btw")
	_, _ = w.CreateFormFile("file", "endless.xml")
	h := auth(w.FormDataContentType())
	h.Set("Transfer-Encoding", "chunked")
	r, sent := rawPost(t, base, "/v1/messages", h, io.MultiReader(bytes.NewReader(mw.Bytes()), &endless{left: 1 << 30}))
	p = r.expect(t, http.StatusRequestEntityTooLarge, "too-large")
	if !strings.Contains(p.Detail, "endless.xml is over") {
		t.Errorf("detail: %s", p.Detail)
	}
	if sent > 48<<20 {
		t.Errorf("the API answered only after %d MiB of a file it refuses at 20 MiB", sent>>20)
	}
	t.Logf("an endless file was refused after %.1f MiB had been sent", float64(sent)/(1<<20))

	// Files each under the limit, together over the request's cap (64 MiB), streamed.
	var parts []io.Reader
	w = multipart.NewWriter(io.Discard)
	boundary := w.Boundary()
	for i := range 4 {
		parts = append(parts, strings.NewReader(fmt.Sprintf("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"part%d.pdf\"\r\n"+
			"Content-Type: application/pdf\r\n\r\n", boundary, i)), &endless{left: 19 << 20}, strings.NewReader("\r\n"))
	}
	parts = append(parts, strings.NewReader("--"+boundary+"--\r\n"))
	h = auth(w.FormDataContentType())
	h.Set("Transfer-Encoding", "chunked")
	r, sent = rawPost(t, base, "/v1/messages", h, io.MultiReader(parts...))
	p = r.expect(t, http.StatusRequestEntityTooLarge, "too-large")
	if !strings.Contains(p.Detail, "over the limit of 64 MiB per queue request") {
		t.Errorf("detail: %s", p.Detail)
	}
	t.Logf("76 MiB in four files were refused after %.1f MiB had been sent", float64(sent)/(1<<20))

	// A Content-Length over the cap: answered although no byte of the body is ever
	// sent (rawPost sends none), so the answer cannot have waited for it.
	h = auth("multipart/form-data; boundary=x")
	h.Set("Content-Length", fmt.Sprint(1<<30))
	r, _ = rawPost(t, base, "/v1/messages", h, nil)
	r.expect(t, http.StatusRequestEntityTooLarge, "too-large")
	// The same for JSON.
	h = auth("application/json")
	h.Set("Content-Length", fmt.Sprint(1<<30))
	r, _ = rawPost(t, base, "/v1/messages", h, nil)
	r.expect(t, http.StatusRequestEntityTooLarge, "too-large")
	// A base64 document over the limit is refused before it is decoded.
	doc := base64.StdEncoding.EncodeToString(huge)
	jb, _ := json.Marshal(map[string]string{"type": "btw", "subject": "001000044B37", "period": "2021-10", "document": doc})
	acme.do(acme.request(http.MethodPost, "/v1/messages", bytes.NewReader(jb), "application/json")).expect(t, http.StatusRequestEntityTooLarge, "too-large")

	// More files than a message may have, each small.
	files := []apiFile{vatFile(t)}
	for i := range 100 {
		files = append(files, apiFile{name: fmt.Sprintf("bijlage-%d.pdf", i), mimeType: "application/pdf", content: []byte("%PDF-1.4")})
	}
	body, ct = queueForm(t, vatFields("2021-10"), files...)
	p = acme.do(acme.request(http.MethodPost, "/v1/messages", bytes.NewReader(body), ct)).expect(t, http.StatusRequestEntityTooLarge, "too-large")
	if !strings.Contains(p.Detail, "more than 100 files") {
		t.Errorf("detail: %s", p.Detail)
	}

	if list := acme.messages(""); len(list.Messages) != 0 {
		t.Fatalf("refused requests stored messages: %+v", list.Messages)
	}
	if view, err := s.Store.EnvironmentView(context.Background(), "acme", 0); err != nil || len(view) != 0 {
		t.Fatalf("the store holds %v (%v)", view, err)
	}
}

// Malformed requests get 400, the wrong media type 415, a message that cannot be queued
// 422, each saying what to fix; none stores anything.
func TestAPIRefusesMalformedRequests(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{NoWorker: true})
	base := startAPI(t, s)
	acme := apiEnv(t, s, base, store.Environment{Name: "acme"})
	post := func(body []byte, ct string, extra ...string) apiReply {
		req := acme.request(http.MethodPost, "/v1/messages", bytes.NewReader(body), ct)
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header.Add(extra[i], extra[i+1])
		}
		return acme.do(req)
	}
	good, ct := queueForm(t, vatFields("2021-10"), vatFile(t))
	_, boundary, _ := strings.Cut(ct, "boundary=")
	jsonBody := func(v map[string]any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	vat := vatFile(t)
	unknownType, unknownCT := queueForm(t, map[string]string{"type": "zzz", "subject": "1", "period": "2026"}, vat)
	noFile, noFileCT := queueForm(t, vatFields("2021-10"))
	notXBRL, notXBRLCT := queueForm(t, vatFields("2021-10"), apiFile{name: "photo.png", mimeType: "image/png", content: []byte("\x89PNG\r\n\x1a\n")})
	cases := []struct {
		name          string
		reply         func() apiReply
		status        int
		problem, says string
	}{
		{"truncated multipart", func() apiReply { return post(good[:len(good)/2], ct) }, 400, "bad-request", "multipart body could not be read"},
		{"garbage multipart", func() apiReply { return post([]byte("this is not multipart"), ct) }, 400, "bad-request", "could not be read"},
		{"no boundary", func() apiReply { return post(good, "multipart/form-data") }, 400, "bad-request", "no boundary"},
		{"wrong boundary", func() apiReply { return post(good, "multipart/form-data; boundary=other"+boundary) }, 400, "bad-request", "could not be read"},
		{"unknown field", func() apiReply {
			b, c := queueForm(t, map[string]string{"type": "btw"}, vat)
			return post(bytes.Replace(b, []byte(`name="type"`), []byte(`name="tpye"`), 1), c)
		}, 400, "bad-request", `unknown field "tpye"`},
		{"field twice", func() apiReply {
			b, c := queueForm(t, map[string]string{"type": "btw", "subject": "x"}, vat)
			return post(bytes.Replace(b, []byte(`name="subject"`), []byte(`name="type"`), 1), c)
		}, 400, "bad-request", "given twice"},
		{"file without a name", func() apiReply {
			return post(bytes.Replace(good, []byte(`; filename="`+vat.name+`"`), nil, 1), ct)
		}, 400, "bad-request", "has no filename"},
		{"text/plain", func() apiReply { return post(good, "text/plain") }, 415, "unsupported-media-type", "send multipart/form-data"},
		{"no content type", func() apiReply { return post(good, "") }, 415, "unsupported-media-type", "the Content-Type is none"},
		{"xml body", func() apiReply { return post(vat.content, "application/xml") }, 415, "unsupported-media-type", "application/json"},
		{"unknown type", func() apiReply { return post(unknownType, unknownCT) }, 422, "invalid-message", "unknown message type"},
		{"no file", func() apiReply { return post(noFile, noFileCT) }, 422, "invalid-message", "at least one file"},
		{"not the declaration", func() apiReply { return post(notXBRL, notXBRLCT) }, 422, "invalid-message", "must be an XBRL instance"},
		{"bad period", func() apiReply {
			b, c := queueForm(t, map[string]string{"type": "btw", "subject": "001000044B37", "period": strings.Repeat("9", 40)}, vat)
			return post(b, c)
		}, 422, "invalid-message", "period"},
		{"malformed json", func() apiReply { return post([]byte(`{"type": "btw",`), "application/json") }, 400, "bad-request", "JSON body could not be read"},
		{"unknown json field", func() apiReply { return post(jsonBody(map[string]any{"type": "btw", "file": "x"}), "application/json") }, 400,
			"bad-request", `unknown field "file"`},
		{"two json objects", func() apiReply { return post([]byte(`{"type":"btw"} {}`), "application/json") }, 400, "bad-request", "one object"},
		{"json without document", func() apiReply {
			return post(jsonBody(map[string]any{"type": "btw", "subject": "001000044B37", "period": "2021-10"}), "application/json")
		}, 422, "invalid-message", "document is missing"},
		{"json bad base64", func() apiReply {
			return post(jsonBody(map[string]any{"type": "btw", "subject": "001000044B37", "period": "2021-10", "document": "<xbrl>"}), "application/json")
		}, 400, "bad-request", "document is not base64"},
		{"json unknown type", func() apiReply {
			return post(jsonBody(map[string]any{"type": "zzz", "subject": "1", "period": "2026", "document": base64.StdEncoding.EncodeToString(vat.content)}),
				"application/json")
		}, 422, "invalid-message", "unknown message type"},
		{"key with a space", func() apiReply { return post(good, ct, "Idempotency-Key", "my key") }, 400, "bad-request", "Idempotency-Key"},
		{"key too long", func() apiReply { return post(good, ct, "Idempotency-Key", strings.Repeat("k", 201)) }, 400, "bad-request", "Idempotency-Key"},
		{"two keys", func() apiReply { return post(good, ct, "Idempotency-Key", "a", "Idempotency-Key", "b") }, 400, "bad-request", "one Idempotency-Key"},
		{"number not a number", func() apiReply { return acme.get("/v1/messages/abc") }, 400, "bad-request", `"abc" is not a message number`},
		{"unknown filter", func() apiReply { return acme.get("/v1/messages?state=accepted") }, 400, "bad-request", `unknown query parameter "state"`},
		{"unknown status", func() apiReply { return acme.get("/v1/messages?status=done") }, 400, "bad-request", `unknown status "done"`},
		{"unknown type filter", func() apiReply { return acme.get("/v1/messages?type=zzz") }, 400, "bad-request", "unknown message type"},
		{"bad since", func() apiReply { return acme.get("/v1/messages?since=yesterday") }, 400, "bad-request", "RFC 3339"},
		{"bad cursor", func() apiReply { return acme.get("/v1/messages?cursor=x") }, 400, "bad-request", "next_cursor"},
		{"bad limit", func() apiReply { return acme.get("/v1/messages?limit=1000") }, 400, "bad-request", "from 1 to 200"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.reply()
			p := r.expect(t, c.status, c.problem)
			if !strings.Contains(p.Detail, c.says) {
				t.Errorf("detail %q does not say %q", p.Detail, c.says)
			}
			if c.status == 415 && r.Header.Get("Accept-Post") == "" {
				t.Errorf("415 without Accept-Post")
			}
		})
	}

	// Outside the document: unknown paths and methods are problems too.
	acme.send(acme.request(http.MethodGet, "/v2/things", nil, "")).expect(t, http.StatusNotFound, "not-found")
	r := acme.send(acme.request(http.MethodDelete, "/v1/messages/1", nil, ""))
	r.expect(t, http.StatusMethodNotAllowed, "method-not-allowed")
	if r.Header.Get("Allow") != "GET" {
		t.Errorf("405 Allow %q", r.Header.Get("Allow"))
	}
	if list := acme.messages(""); len(list.Messages) != 0 {
		t.Fatalf("refused requests stored messages: %+v", list.Messages)
	}
}

// The happy path over the API: a hand-process environment queues the real VAT return as
// JSON, the simulator accepts it, the environment still sees it queued until it calls
// process, then accepted with Digipoort's replies; its documents are the bytes it sent.
func TestAPIQueueProcessAndRead(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	base := startAPI(t, s)
	acme := apiEnv(t, s, base, store.Environment{Name: "acme", AutoSend: true})

	r := acme.get("/v1/openapi.json")
	r.expect(t, http.StatusOK, "")
	if !bytes.Equal(r.Body, api.OpenAPI) {
		t.Error("/v1/openapi.json is not api/openapi.json")
	}

	vat := vatFile(t)
	body, _ := json.Marshal(map[string]any{"type": "BTW", "subject": "001000044B37", "period": "2021-10", "memo": "Q4",
		"document": base64.StdEncoding.EncodeToString(vat.content), "document_name": "aangifte.xbrl"})
	req := acme.request(http.MethodPost, "/v1/messages", bytes.NewReader(body), "application/json")
	req.Header.Set("Idempotency-Key", "2021-10-btw")
	r = acme.do(req)
	r.expect(t, http.StatusCreated, "")
	var q apiQueued
	r.decode(t, &q)
	if q.Status != "queued" || q.Version != 1 || q.DoNotSend || r.Header.Get("Location") != fmt.Sprintf("/v1/messages/%d", q.Number) {
		t.Fatalf("queued: %s, Location %s", r.Body, r.Header.Get("Location"))
	}
	// The API started the message's workflow (auto-send delivers it at once), before any send/receive.
	if _, err := s.Temporal.DescribeWorkflow(context.Background(), pipeline.DeclarationID(q.Number), ""); err != nil {
		t.Fatalf("the API did not start message %d's workflow: %v", q.Number, err)
	}
	until(t, s, q.Number, domain.StatusAccepted)
	if d := s.Sim.Deliveries(ak(q.Number)); d.Accepted != 1 || d.Duplicates != 0 {
		t.Errorf("deliveries at Digipoort: %+v", d)
	}

	var m store.APIMessage
	acme.get(fmt.Sprintf("/v1/messages/%d", q.Number)).decode(t, &m)
	if m.Status != domain.StatusQueued || len(m.Replies) != 0 {
		t.Errorf("before process the environment must see the message as it was queued: %+v", m)
	}
	r = acme.post(fmt.Sprintf("/v1/messages/%d/process", q.Number))
	r.expect(t, http.StatusAccepted, "")
	testenv.Eventually(t, 20*time.Second, "the environment sees accepted", func() (bool, string) {
		acme.get(fmt.Sprintf("/v1/messages/%d", q.Number)).decode(t, &m)
		return m.Status == domain.StatusAccepted, string(m.Status)
	})
	if m.Type != "btw" || m.Subject != "001000044B37" || m.Period != "2021-10" || m.Version != 1 || m.DoNotSend || m.NeedsAction ||
		m.LastStatusChange == nil || len(m.Replies) == 0 || m.Replies[len(m.Replies)-1].Code != "500" {
		t.Errorf("after process: %+v", m)
	}

	var docs struct {
		Documents []store.APIDocument `json:"documents"`
	}
	acme.get(fmt.Sprintf("/v1/messages/%d/documents", q.Number)).decode(t, &docs)
	sum := sha256.Sum256(vat.content)
	var out *store.APIDocument
	for i, d := range docs.Documents {
		if d.Kind == "outgoing" {
			out = &docs.Documents[i]
		}
	}
	if out == nil || out.Name != "aangifte.xbrl" || out.SHA256 != hex.EncodeToString(sum[:]) || out.Size != int64(len(vat.content)) {
		t.Fatalf("documents: %+v", docs.Documents)
	}
	r = acme.get(fmt.Sprintf("/v1/messages/%d/documents/%d", q.Number, out.ID))
	r.expect(t, http.StatusOK, "")
	if !bytes.Equal(r.Body, vat.content) || r.Header.Get("Content-Type") != "application/xml" ||
		r.Header.Get("Content-Disposition") != `attachment; filename=aangifte.xbrl` ||
		r.Header.Get("Repr-Digest") != "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":" {
		t.Errorf("document: %d bytes, headers %v", len(r.Body), r.Header)
	}

	// The list and its filters and pages.
	for _, p := range []string{"2021-11", "2021-12"} {
		acme.queueVAT(p, "").expect(t, http.StatusCreated, "")
	}
	if l := acme.messages("?status=accepted"); len(l.Messages) != 1 || l.Messages[0].Number != q.Number {
		t.Errorf("status=accepted: %+v", l.Messages)
	}
	if l := acme.messages("?since=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); len(l.Messages) != 0 {
		t.Errorf("since an hour from now: %+v", l.Messages)
	}
	r = acme.get("/v1/messages?limit=2&type=btw")
	var page struct {
		Messages   []store.APIMessage `json:"messages"`
		NextCursor string             `json:"next_cursor"`
	}
	r.decode(t, &page)
	if len(page.Messages) != 2 || page.NextCursor == "" || !strings.Contains(r.Header.Get("Link"), `rel="next"`) {
		t.Fatalf("first page: %s (Link %s)", r.Body, r.Header.Get("Link"))
	}
	seen := []int64{page.Messages[0].Number, page.Messages[1].Number}
	page2 := acme.messages("?limit=2&type=btw&cursor=" + page.NextCursor)
	if len(page2.Messages) != 1 || page2.NextCursor != "" || page2.Messages[0].Number <= seen[1] {
		t.Fatalf("second page after %v: %+v", seen, page2)
	}
}
