package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/sirupsen/logrus"

	"koerier/domain"
	"koerier/internal/secrets"
	"koerier/internal/testdb"
	"koerier/pipeline"
	"koerier/store"
)

// The e-invoice and e-mail profile endpoints (issue 13) over a real store in a real
// Postgres. Workflows are recorded, not run: the e2e suite runs them. Every answer is
// checked against the OpenAPI document.

// startRecorder records the workflows the API starts.
type startRecorder struct {
	mu      sync.Mutex
	started []pipeline.Message
}

func (r *startRecorder) Start(_ context.Context, m pipeline.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = append(r.started, m)
	return nil
}

func (r *startRecorder) Signal(context.Context, pipeline.Message, string, any) error {
	return errors.New("the e-invoice tests signal no workflow")
}

func (r *startRecorder) startedNumbers() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int64, len(r.started))
	for i, m := range r.started {
		out[i] = m.Number
	}
	return out
}

// scheduleCall is one call of the MailSchedule hook.
type scheduleCall struct {
	env     string
	mailbox bool
}

type mailAPI struct {
	t       *testing.T
	st      *store.Store
	url     string // the database's
	base    string
	flows   *startRecorder
	mu      sync.Mutex
	calls   []scheduleCall
	failing bool // the hook fails
	tokens  map[string]string
}

func newBox(t *testing.T) *secrets.Box {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	b, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newMailAPI serves the API over a fresh database with environments acme and other,
// each with a token.
func newMailAPI(t *testing.T) *mailAPI {
	t.Helper()
	url := testdb.New(t)
	st, err := store.Open(context.Background(), url, store.Options{Migrate: true, Secrets: newBox(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &mailAPI{t: t, st: st, url: url, flows: &startRecorder{}, tokens: map[string]string{}}
	for _, env := range []string{"acme", "other"} {
		if _, err := st.AddEnvironment(context.Background(), store.Environment{Name: env}); err != nil {
			t.Fatal(err)
		}
		_, secret, err := st.IssueToken(context.Background(), env)
		if err != nil {
			t.Fatal(err)
		}
		a.tokens[env] = secret
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	srv := &Server{Store: st, Workflows: a.flows, Catalog: domain.DefaultCatalog(), Log: log,
		MailSchedule: func(_ context.Context, env string, mailbox bool) error {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.calls = append(a.calls, scheduleCall{env, mailbox})
			if a.failing {
				return errors.New("temporal at temporal.internal:7233 is away")
			}
			return nil
		}}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	a.base = hs.URL
	return a
}

func (a *mailAPI) setFailing(v bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failing = v
}

func (a *mailAPI) lastSchedule() scheduleCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.calls) == 0 {
		a.t.Fatal("the schedule hook was not called")
	}
	return a.calls[len(a.calls)-1]
}

var (
	docOnce   sync.Once
	docRouter routers.Router
	docErr    error
)

// reply is an answer with its body read, checked against the OpenAPI document.
type reply struct {
	*http.Response
	body []byte
}

func (a *mailAPI) do(env, method, path, contentType string, body []byte) reply {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.tokens[env])
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	a.validate(req, resp, b)
	return reply{resp, b}
}

func (a *mailAPI) validate(req *http.Request, resp *http.Response, body []byte) {
	a.t.Helper()
	docOnce.Do(func() {
		var doc *openapi3.T
		if doc, docErr = openapi3.NewLoader().LoadFromData(OpenAPI); docErr == nil {
			docRouter, docErr = legacy.NewRouter(doc)
		}
	})
	if docErr != nil {
		a.t.Fatal(docErr)
	}
	route, params, err := docRouter.FindRoute(req)
	if err != nil {
		a.t.Errorf("%s %s is not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		a.t.Errorf("%s %s answered %s, which the OpenAPI document does not allow: %v\n%s", req.Method, req.URL.Path, resp.Status, err, body)
	}
}

func (r reply) expect(t *testing.T, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: %s, want %d: %s", r.Request.Method, r.Request.URL.Path, r.Status, status, r.body)
	}
}

func (r reply) problem(t *testing.T, status int, typ string) Problem {
	t.Helper()
	r.expect(t, status)
	var p Problem
	if err := json.Unmarshal(r.body, &p); err != nil || r.Header.Get("Content-Type") != problemContentType {
		t.Fatalf("not a problem: %s %v", r.body, err)
	}
	if p.Type != typ {
		t.Fatalf("problem type %s, want %s: %s", p.Type, typ, r.body)
	}
	return p
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// example is the Peppol BIS Billing 3.0 example invoice (2026-0417, to
// crediteuren@klant.example, EUR 447.70) with the edits given as old, new pairs.
func example(t *testing.T, edits ...string) []byte {
	t.Helper()
	b, err := os.ReadFile("../domain/testdata/einvoice/example-invoice.xml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("the example has no %q", edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	return []byte(s)
}

// multipartInvoice is a queue request for an e-invoice as curl -F sends it.
func multipartInvoice(t *testing.T, doc []byte, fields ...string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fields = append([]string{"type", "einvoice"}, fields...)
	for i := 0; i+1 < len(fields); i += 2 {
		if err := mw.WriteField(fields[i], fields[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", "factuur-2026-0417.xml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(doc); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

func (a *mailAPI) messageCount() int {
	a.t.Helper()
	var n int
	if err := a.st.DB().GetContext(context.Background(), &n, `SELECT count(*) FROM messages`); err != nil {
		a.t.Fatal(err)
	}
	return n
}

const localProfile = `{"from": "acme@koerier.test", "smtp": {"host": "smtp.koerier.test", "port": 587, "security": "starttls"},
	"imap": {"host": "imap.koerier.test", "port": 993, "security": "tls", "user": "acme"}}`

// An environment cannot point its own profile at the service's machine or network, nor
// ask for no TLS: a local relay would send mail as anyone. An operator can
// (`starter environments set`).
func TestMailProfileOnTheServicesMachineRefused(t *testing.T) {
	a := newMailAPI(t)
	for _, body := range []string{
		`{"from": "acme@koerier.test", "smtp": {"host": "127.0.0.1", "port": 25, "security": "starttls"}}`,
		`{"from": "acme@koerier.test", "smtp": {"host": "10.1.2.3", "port": 587, "security": "starttls"}}`,
		`{"from": "acme@koerier.test", "smtp": {"host": "smtp.koerier.test", "port": 587, "security": "starttls"},
			"imap": {"host": "localhost", "port": 993, "security": "tls", "user": "acme"}}`,
		`{"from": "acme@koerier.test", "smtp": {"host": "smtp.koerier.test", "port": 25, "security": "none"}}`,
	} {
		p := a.do("acme", http.MethodPut, "/v1/mail-profile", "application/json", []byte(body)).problem(t, http.StatusUnprocessableEntity, ProblemInvalidProfile)
		if !strings.Contains(p.Detail, "starter environments set") {
			t.Errorf("%s: %s", body, p.Detail)
		}
	}
	a.do("acme", http.MethodGet, "/v1/mail-profile", "", nil).expect(t, http.StatusNotFound)
}

// Issue 13 "Queue": an e-invoice is queued through POST /v1/messages (multipart and
// JSON) under its own number and month, goes out by e-mail, and is one of the
// environment's messages; a failed check is a 422 naming the rule, with nothing stored.
func TestQueueEInvoiceOverTheAPI(t *testing.T) {
	a := newMailAPI(t)
	body, ct := multipartInvoice(t, example(t))

	// Without an e-mail profile there is nothing to send it from.
	p := a.do("acme", http.MethodPost, "/v1/messages", ct, body).problem(t, http.StatusUnprocessableEntity, ProblemInvalid)
	if !strings.Contains(p.Detail, "environment acme has none") || !strings.Contains(p.Detail, "--local-mail") {
		t.Errorf("refusal without profile: %q", p.Detail)
	}
	if n := a.messageCount(); n != 0 {
		t.Fatalf("%d messages stored for a refused e-invoice", n)
	}
	a.do("acme", http.MethodPut, "/v1/mail-profile", "application/json", []byte(localProfile)).expect(t, http.StatusOK)

	r := a.do("acme", http.MethodPost, "/v1/messages", ct, body)
	r.expect(t, http.StatusCreated)
	var q queueAnswer
	r.decode(t, &q)
	if got := a.flows.startedNumbers(); len(got) != 1 || got[0] != q.Number {
		t.Errorf("workflows started: %v, want [%d]", got, q.Number)
	}
	var m store.APIMessage
	a.do("acme", http.MethodGet, messagePath(q.Number), "", nil).decode(t, &m)
	if m.Channel != domain.ChannelEmail || m.Recipient != "crediteuren@klant.example" || m.Type != domain.TypeEInvoice ||
		m.Subject != "2026-0417" || m.Period != "2026-11" || m.Status != domain.StatusQueued {
		t.Errorf("the queued e-invoice: %+v", m)
	}
	var list messageList
	a.do("acme", http.MethodGet, "/v1/messages", "", nil).decode(t, &list)
	if len(list.Messages) != 1 || list.Messages[0].Channel != domain.ChannelEmail || list.Messages[0].Recipient != "crediteuren@klant.example" {
		t.Errorf("the list: %+v", list.Messages)
	}
	a.do("other", http.MethodGet, messagePath(q.Number), "", nil).problem(t, http.StatusNotFound, ProblemNotFound)

	// Line 2 says 130.00 where the total counts 120.00: the lines do not add up.
	before := a.messageCount()
	broken, ct := multipartInvoice(t, example(t, `<cbc:LineExtensionAmount currencyID="EUR">120.00</cbc:LineExtensionAmount>`,
		`<cbc:LineExtensionAmount currencyID="EUR">130.00</cbc:LineExtensionAmount>`), "subject", "2026-0417")
	p = a.do("acme", http.MethodPost, "/v1/messages", ct, broken).problem(t, http.StatusUnprocessableEntity, ProblemInvalidEInvoice)
	if p.Rule != "ubl.sum.lines" || strings.HasPrefix(p.Detail, "ubl.sum.lines") || !strings.Contains(p.Detail, "370.00") {
		t.Errorf("a broken sum: rule %q, detail %q", p.Rule, p.Detail)
	}
	if n := a.messageCount(); n != before {
		t.Errorf("a refused e-invoice stored %d message(s)", n-before)
	}

	// Without the customer's address it is refused, unless one is given with it (JSON).
	noAddress := example(t, `<cbc:EndpointID schemeID="EM">crediteuren@klant.example</cbc:EndpointID>`, "",
		`<cac:Contact><cbc:ElectronicMail>crediteuren@klant.example</cbc:ElectronicMail></cac:Contact>`, "",
		"<cbc:ID>2026-0417</cbc:ID>", "<cbc:ID>2026-0418</cbc:ID>")
	jsonBody := func(to string) []byte {
		b, err := json.Marshal(queueJSON{Type: "einvoice", Document: base64.StdEncoding.EncodeToString(noAddress), To: to})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p = a.do("acme", http.MethodPost, "/v1/messages", "application/json", jsonBody("")).
		problem(t, http.StatusUnprocessableEntity, ProblemInvalidEInvoice)
	if p.Rule != "ubl.customer-address" || !strings.Contains(p.Detail, "give the address to send to") {
		t.Errorf("no customer address: rule %q, detail %q", p.Rule, p.Detail)
	}
	if n := a.messageCount(); n != before {
		t.Errorf("a refused e-invoice stored %d message(s)", n-before)
	}
	r = a.do("acme", http.MethodPost, "/v1/messages", "application/json", jsonBody("boekhouding@klant.example"))
	r.expect(t, http.StatusCreated)
	r.decode(t, &q)
	a.do("acme", http.MethodGet, messagePath(q.Number), "", nil).decode(t, &m)
	if m.Recipient != "boekhouding@klant.example" || m.Subject != "2026-0418" || m.Channel != domain.ChannelEmail {
		t.Errorf("queued with to: %+v", m)
	}
	docs, err := a.st.Attachments(context.Background(), q.Number)
	if err != nil || len(docs) != 1 || docs[0].FileName != "invoice.xml" || !bytes.Equal(docs[0].Content, noAddress) {
		t.Errorf("the stored UBL: %+v %v", docs, err)
	}
}

// Issue 13 "Profile": the environment sets, reads and removes its own e-mail profile;
// a password goes in and never comes out, and a PUT without it keeps it.
func TestMailProfileOverTheAPI(t *testing.T) {
	a := newMailAPI(t)
	ctx := context.Background()
	a.do("acme", http.MethodGet, "/v1/mail-profile", "", nil).problem(t, http.StatusNotFound, ProblemNotFound)

	const smtpPassword, imapPassword = "smtp-Wachtwoord-7781", "imap-Wachtwoord-4410"
	put := `{"from": "facturen@acme.example", "smtp": {"host": "smtp.acme.example", "port": 465, "security": "tls", "user": "facturen",
		"password": "` + smtpPassword + `"}, "imap": {"host": "imap.acme.example", "port": 993, "security": "tls", "user": "facturen",
		"password": "` + imapPassword + `"}, "folder": "INBOX/Facturen"}`
	for _, r := range []reply{
		a.do("acme", http.MethodPut, "/v1/mail-profile", "application/json", []byte(put)),
		a.do("acme", http.MethodGet, "/v1/mail-profile", "", nil),
	} {
		r.expect(t, http.StatusOK)
		if bytes.Contains(r.body, []byte(smtpPassword)) || bytes.Contains(r.body, []byte(imapPassword)) || bytes.Contains(r.body, []byte(`"password"`)) {
			t.Fatalf("%s %s gives the password away: %s", r.Request.Method, r.Request.URL.Path, r.body)
		}
		var v profileView
		r.decode(t, &v)
		if v.From != "facturen@acme.example" || v.SMTP.Host != "smtp.acme.example" || !v.SMTP.PasswordSet || v.IMAP == nil ||
			!v.IMAP.PasswordSet || v.Folder != "INBOX/Facturen" || v.ProcessedFolder != store.DefaultProcessedFolder || v.ScheduleError != "" {
			t.Errorf("%s %s: %+v", r.Request.Method, r.Request.URL.Path, v)
		}
	}
	if c := a.lastSchedule(); c != (scheduleCall{"acme", true}) {
		t.Errorf("schedule hook after PUT: %+v", c)
	}
	env, err := a.st.Environment(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := a.st.MailProfile(ctx, env.ID)
	if err != nil || stored.SMTP.Password != smtpPassword || stored.IMAP.Password != imapPassword {
		t.Fatalf("stored profile: %v (passwords as given: %v)", err, stored.SMTP.Password == smtpPassword && stored.IMAP.Password == imapPassword)
	}
	if other, err := a.st.Environment(ctx, "other"); err != nil {
		t.Fatal(err)
	} else if _, err := a.st.MailProfile(ctx, other.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the other environment got a profile: %v", err)
	}

	// A second PUT without passwords (send only now, another sender) keeps the SMTP
	// password; the schedule follows (no mailbox), and when it cannot, the answer says so.
	a.setFailing(true)
	r := a.do("acme", http.MethodPut, "/v1/mail-profile", "application/json",
		[]byte(`{"from": "verkoop@acme.example", "smtp": {"host": "smtp.acme.example", "port": 465, "security": "tls", "user": "facturen"}}`))
	r.expect(t, http.StatusOK)
	var v profileView
	r.decode(t, &v)
	if v.From != "verkoop@acme.example" || !v.SMTP.PasswordSet || v.IMAP != nil || !strings.Contains(v.ScheduleError, "starter schedules apply") ||
		strings.Contains(v.ScheduleError, "temporal.internal") {
		t.Errorf("second PUT: %+v", v)
	}
	// A send-only profile keeps its schedule: it sends the due e-invoices.
	if c := a.lastSchedule(); c != (scheduleCall{"acme", true}) {
		t.Errorf("schedule hook after a PUT without mailbox: %+v", c)
	}
	a.setFailing(false)
	if stored, err = a.st.MailProfile(ctx, env.ID); err != nil || stored.SMTP.Password != smtpPassword || stored.From != "verkoop@acme.example" {
		t.Fatalf("after a PUT without password: from %q, SMTP password kept: %v, %v", stored.From, stored.SMTP.Password == smtpPassword, err)
	}

	// A profile the store refuses is a 422 with its reasons, and changes nothing.
	p := a.do("acme", http.MethodPut, "/v1/mail-profile", "application/json",
		[]byte(`{"from": "Acme <x@acme.example>", "smtp": {"host": "smtp.acme.example", "port": 0, "security": "tls"}}`)).
		problem(t, http.StatusUnprocessableEntity, ProblemInvalidProfile)
	if !strings.Contains(p.Detail, "not a plain e-mail address") || !strings.Contains(p.Detail, "port") {
		t.Errorf("refused profile: %q", p.Detail)
	}
	if stored, err = a.st.MailProfile(ctx, env.ID); err != nil || stored.From != "verkoop@acme.example" {
		t.Errorf("a refused PUT changed the profile: %+v %v", stored.From, err)
	}
	a.do("acme", http.MethodPut, "/v1/mail-profile", "application/json", []byte(`{"from": "x@acme.example", "smpt": {}}`)).
		problem(t, http.StatusBadRequest, ProblemBadRequest)

	r = a.do("acme", http.MethodDelete, "/v1/mail-profile", "", nil)
	r.expect(t, http.StatusOK)
	if c := a.lastSchedule(); c != (scheduleCall{"acme", false}) {
		t.Errorf("schedule hook after DELETE: %+v", c)
	}
	a.do("acme", http.MethodGet, "/v1/mail-profile", "", nil).problem(t, http.StatusNotFound, ProblemNotFound)
}

// Without KOERIER_SECRET_KEY the service cannot store a password: the store's advice
// is the 422's detail.
func TestMailProfilePasswordWithoutKey(t *testing.T) {
	a := newMailAPI(t)
	nokey, err := store.Open(context.Background(), a.url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer nokey.Close()
	log := logrus.New()
	log.SetOutput(io.Discard)
	hs := httptest.NewServer((&Server{Store: nokey, Workflows: a.flows, Catalog: domain.DefaultCatalog(), Log: log}).Handler())
	defer hs.Close()
	a.base = hs.URL
	p := a.do("acme", http.MethodPut, "/v1/mail-profile", "application/json",
		[]byte(`{"from": "facturen@acme.example", "smtp": {"host": "smtp.acme.example", "port": 465, "security": "tls", "user": "u", "password": "pw-1234"}}`)).
		problem(t, http.StatusUnprocessableEntity, ProblemInvalidProfile)
	if !strings.Contains(p.Detail, secrets.EnvVar) {
		t.Errorf("without key: %q", p.Detail)
	}
}

// Issue 13 "Visible to the environment": the e-invoices that came into the mailbox
// are listed a page at a time, read one by one, and their UBL is given back exactly;
// another environment sees none of them.
func TestReceivedEInvoicesOverTheAPI(t *testing.T) {
	a := newMailAPI(t)
	ctx := context.Background()
	env, err := a.st.Environment(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	var received []store.ReceivedInvoice
	for _, n := range []string{"2026-0417", "2026-0420"} {
		doc := example(t, "<cbc:ID>2026-0417</cbc:ID>", "<cbc:ID>"+n+"</cbc:ID>")
		inv, err := domain.ReadEInvoice(doc)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
		received = append(received, store.ReceivedInvoice{FileName: "factuur " + n + ".xml", Content: doc, Invoice: inv})
	}
	res, err := a.st.StoreIncomingMail(ctx, store.IncomingMail{EnvironmentID: env.ID, MessageID: "<f-2026@drukkerij.example>",
		From: "facturen@drukkerij.example", Subject: "Facturen", Raw: []byte("mail"), Invoices: received})
	if err != nil || len(res.Stored) != 2 {
		t.Fatalf("store the mail: %+v %v", res, err)
	}

	r := a.do("acme", http.MethodGet, "/v1/einvoices?limit=1", "", nil)
	r.expect(t, http.StatusOK)
	var page invoiceList
	r.decode(t, &page)
	if len(page.EInvoices) != 1 || page.NextAfter != res.Stored[0] || !strings.Contains(r.Header.Get("Link"), "after="+strconv.FormatInt(res.Stored[0], 10)) {
		t.Fatalf("first page: %+v, Link %q", page, r.Header.Get("Link"))
	}
	first := page.EInvoices[0]
	if first.Number != res.Stored[0] || first.InvoiceNumber != "2026-0417" || first.Supplier != "Drukkerij Voorbeeld B.V." ||
		first.Amount != "447.70" || first.Currency != "EUR" || first.Kind != "Invoice" || first.IssueDate != "2026-11-20" ||
		first.Status != string(domain.StatusReceived) || first.Document != invoicePath(first.Number)+"/document" {
		t.Errorf("first invoice: %+v", first)
	}
	var second invoiceList
	a.do("acme", http.MethodGet, "/v1/einvoices?after="+strconv.FormatInt(page.NextAfter, 10), "", nil).decode(t, &second)
	if len(second.EInvoices) != 1 || second.EInvoices[0].InvoiceNumber != "2026-0420" || second.NextAfter != 0 {
		t.Fatalf("second page: %+v", second)
	}

	var one invoiceView
	a.do("acme", http.MethodGet, invoicePath(res.Stored[1]), "", nil).decode(t, &one)
	if one.Number != res.Stored[1] || one.InvoiceNumber != "2026-0420" {
		t.Errorf("one invoice: %+v", one)
	}
	r = a.do("acme", http.MethodGet, invoicePath(res.Stored[1])+"/document", "", nil)
	r.expect(t, http.StatusOK)
	if !bytes.Equal(r.body, docs[1]) || r.Header.Get("Content-Type") != "application/xml" ||
		r.Header.Get("Content-Disposition") != `attachment; filename="factuur 2026-0420.xml"` {
		t.Errorf("document: %s %q %q", r.Status, r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"))
	}

	// Another environment: an empty list, and 404 for the invoice and its document,
	// alike a number that does not exist.
	var none invoiceList
	a.do("other", http.MethodGet, "/v1/einvoices", "", nil).decode(t, &none)
	if len(none.EInvoices) != 0 {
		t.Errorf("another environment lists %+v", none.EInvoices)
	}
	missing := a.do("acme", http.MethodGet, invoicePath(res.Stored[1]+1000), "", nil)
	missing.expect(t, http.StatusNotFound)
	for _, path := range []string{invoicePath(res.Stored[0]), invoicePath(res.Stored[0]) + "/document"} {
		r := a.do("other", http.MethodGet, path, "", nil)
		r.problem(t, http.StatusNotFound, ProblemNotFound)
		if path == invoicePath(res.Stored[0]) && !bytes.Equal(r.body, missing.body) {
			t.Errorf("another environment's invoice answers %s, a missing one %s", r.body, missing.body)
		}
	}
	a.do("acme", http.MethodGet, "/v1/einvoices?page=2", "", nil).problem(t, http.StatusBadRequest, ProblemBadRequest)
}
