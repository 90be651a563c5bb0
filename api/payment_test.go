package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// Payment orders over the API (issue 14), over a real store in a real Postgres; every
// answer is checked against the OpenAPI document. Workflows are recorded, not run (the
// e2e suite runs them with the bank simulator): where a test needs what a workflow does,
// it calls the store as the workflow's activities do.

// payFlows records the workflows the API starts and the signals it sends.
type payFlows struct {
	*startRecorder
	mu      sync.Mutex
	signals []string
}

func (f *payFlows) Signal(_ context.Context, m pipeline.Message, signal string, _ any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals = append(f.signals, fmt.Sprintf("%s %d", signal, m.Number))
	return nil
}

func (f *payFlows) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.signals...)
}

// newPaymentAPI serves the API over a fresh database with environments acme (with a
// bank profile: a generated ed25519 key and a pinned host key) and other (without).
func newPaymentAPI(t *testing.T) (*mailAPI, *payFlows) {
	t.Helper()
	a := newMailAPI(t)
	if err := a.st.SetBankProfile(context.Background(), "acme", store.BankProfile{Host: "sftp.bank.example", Port: 2222, User: "acme-h2h",
		PrivateKey: privateKeyPEM(t), HostKey: hostKeyLine(t)}, "tester"); err != nil {
		t.Fatal(err)
	}
	flows := &payFlows{startRecorder: a.flows}
	log := logrus.New()
	log.SetOutput(io.Discard)
	hs := httptest.NewServer((&Server{Store: a.st, Workflows: flows, Catalog: domain.DefaultCatalog(), Log: log}).Handler())
	t.Cleanup(hs.Close)
	a.base = hs.URL
	return a, flows
}

func privateKeyPEM(t *testing.T) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "koerier")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

// hostKeyLine is a bank's host key as `ssh-keyscan` prints it.
func hostKeyLine(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return "[sftp.bank.example]:2222 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// dueDate is the database's today + 7: the example's execution date moves there, so
// that it is never in the past whatever day the test runs.
func (a *mailAPI) dueDate() time.Time {
	a.t.Helper()
	var due time.Time
	if err := a.st.DB().GetContext(context.Background(), &due, `SELECT current_date + 7`); err != nil {
		a.t.Fatal(err)
	}
	return due
}

// examplePayment is the example pain.001.001.09 (MsgId EXAMPLE-20261124-0001, two
// transfers, 1735.50) with its execution date moved to dueDate and the edits given as
// old, new pairs.
func (a *mailAPI) examplePayment(edits ...string) []byte {
	a.t.Helper()
	b, err := os.ReadFile("../domain/testdata/payments/example-pain001.xml")
	if err != nil {
		a.t.Fatal(err)
	}
	edits = append([]string{"<Dt>2026-12-01</Dt>", "<Dt>" + a.dueDate().Format(time.DateOnly) + "</Dt>"}, edits...)
	s := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			a.t.Fatalf("the example has no %q", edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	return []byte(s)
}

// multipartPayment is a queue request for a payment order as curl -F sends it.
func multipartPayment(t *testing.T, doc []byte, fields ...string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fields = append([]string{"type", "payment"}, fields...)
	for i := 0; i+1 < len(fields); i += 2 {
		if err := mw.WriteField(fields[i], fields[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", "betaling-2026-11.xml")
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

func jsonPayment(t *testing.T, doc []byte, subject, period string) []byte {
	t.Helper()
	b, err := json.Marshal(queueJSON{Type: "payment", Subject: subject, Period: period, Document: base64.StdEncoding.EncodeToString(doc)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// doWithKey is do with an Idempotency-Key.
func (a *mailAPI) doWithKey(env, key, contentType string, body []byte) reply {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.base+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.tokens[env])
	req.Header.Set("Content-Type", contentType)
	req.Header.Set(headerIdempotencyKey, key)
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

// The example's transfers as the API shows them before the bank reported anything.
var exampleTransactions = []store.PaymentTxView{
	{EndToEndID: "INV-2026-0311", Amount: "1250.00", Currency: "EUR", Creditor: "Papiergroothandel Noord B.V.", CreditorIBAN: "NL39RABO0300065264"},
	{EndToEndID: "INV-88-2026-17", Amount: "485.50", Currency: "EUR", Creditor: "Inktservice Oost V.O.F.", CreditorIBAN: "NL36INGB0007654321"},
}

func sameTransactions(got, want []store.PaymentTxView) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// Issue 14 "Message type payment": a payment file is queued through POST /v1/messages
// (multipart and JSON) under its MsgId and month, goes to the bank, and shows its
// transfers; a failed check is a 422 naming the rule, a MsgId used before a 409 that says
// what to do, an environment without a bank the store's refusal — and none of them
// stores anything. A corrected file names the order it corrects and is its version 2.
func TestQueuePaymentOverTheAPI(t *testing.T) {
	a, flows := newPaymentAPI(t)
	doc := a.examplePayment()
	body, ct := multipartPayment(t, doc)

	// Without a bank profile there is no bank to deliver it to.
	p := a.do("other", http.MethodPost, "/v1/messages", ct, body).problem(t, http.StatusUnprocessableEntity, ProblemInvalid)
	if !strings.Contains(p.Detail, "environment other has no bank profile") || !strings.Contains(p.Detail, "--local-bank") || p.Rule != "" {
		t.Errorf("refusal without a bank profile: %+v", p)
	}
	if n := a.messageCount(); n != 0 {
		t.Fatalf("%d messages stored for a refused payment order", n)
	}

	r := a.doWithKey("acme", "betaling-1", ct, body)
	r.expect(t, http.StatusCreated)
	var first queueAnswer
	r.decode(t, &first)
	if first.Version != 1 || first.Status != domain.StatusQueued || r.Header.Get("Location") != messagePath(first.Number) {
		t.Errorf("queued: %+v, Location %q", first, r.Header.Get("Location"))
	}
	if got := flows.startedNumbers(); len(got) != 1 || got[0] != first.Number {
		t.Errorf("workflows started: %v, want [%d]", got, first.Number)
	}
	// A retried call (same key, same file) is the same message, not a MsgId used twice.
	r = a.doWithKey("acme", "betaling-1", ct, body)
	r.expect(t, http.StatusCreated)
	var replay queueAnswer
	r.decode(t, &replay)
	if replay != first || r.Header.Get(headerReplayed) != "true" {
		t.Errorf("replay: %+v (%q), want %+v", replay, r.Header.Get(headerReplayed), first)
	}

	var m store.APIMessage
	a.do("acme", http.MethodGet, messagePath(first.Number), "", nil).decode(t, &m)
	period := a.dueDate().Format("2006-01")
	if m.Type != domain.TypePayment || m.Channel != domain.ChannelBank || m.Subject != "EXAMPLE-20261124-0001" || m.Period != period ||
		m.Version != 1 || m.Status != domain.StatusQueued || m.DoNotSend || m.Recipient != "" {
		t.Errorf("the queued payment order: %+v", m)
	}
	if !sameTransactions(m.Transactions, exampleTransactions) {
		t.Errorf("transactions:\n got %+v\nwant %+v", m.Transactions, exampleTransactions)
	}
	docs, err := a.st.Attachments(context.Background(), first.Number)
	if err != nil || len(docs) != 1 || !bytes.Equal(docs[0].Content, doc) || docs[0].MimeType != "application/xml" {
		t.Errorf("the stored file: %d file(s), %v", len(docs), err)
	}

	// A creditor IBAN with wrong check digits and a CtrlSum of 1735.00 where the transfers
	// add up to 1735.50: the first failure is the rule, the detail names both.
	before := a.messageCount()
	broken, ct2 := multipartPayment(t, a.examplePayment("<MsgId>EXAMPLE-20261124-0001</MsgId>", "<MsgId>EXAMPLE-BROKEN</MsgId>",
		"<CtrlSum>1735.50</CtrlSum>", "<CtrlSum>1735.00</CtrlSum>", "NL36INGB0007654321", "NL37INGB0007654321"))
	p = a.do("acme", http.MethodPost, "/v1/messages", ct2, broken).problem(t, http.StatusUnprocessableEntity, ProblemInvalidPayment)
	if p.Rule != "payment.iban" || strings.HasPrefix(p.Detail, p.Rule) || !strings.Contains(p.Detail, `"NL37INGB0007654321" has wrong check digits`) ||
		!strings.Contains(p.Detail, "; also payment.ctrlsum: GrpHdr/CtrlSum says 1735.00") {
		t.Errorf("a broken file: rule %q, detail %q", p.Rule, p.Detail)
	}
	onlySum, ct3 := multipartPayment(t, a.examplePayment("<CtrlSum>1735.50</CtrlSum>", "<CtrlSum>1735.00</CtrlSum>"))
	p = a.do("acme", http.MethodPost, "/v1/messages", ct3, onlySum).problem(t, http.StatusUnprocessableEntity, ProblemInvalidPayment)
	if p.Rule != "payment.ctrlsum" || !strings.Contains(p.Detail, "1735.00") || strings.Contains(p.Detail, "; also ") {
		t.Errorf("a wrong CtrlSum: rule %q, detail %q", p.Rule, p.Detail)
	}
	if n := a.messageCount(); n != before {
		t.Fatalf("a refused payment file stored %d message(s)", n-before)
	}

	// The same MsgId again (in JSON, under another key): the bank would refuse it.
	p = a.doWithKey("acme", "betaling-2", "application/json", jsonPayment(t, doc, "", "")).
		problem(t, http.StatusConflict, ProblemDuplicateMsgID)
	if !strings.Contains(p.Detail, fmt.Sprintf("MsgId EXAMPLE-20261124-0001 was used by message %d", first.Number)) ||
		!strings.Contains(p.Detail, "give the file a new MsgId") || !strings.Contains(p.Detail, "next version") ||
		strings.HasPrefix(p.Detail, store.ErrRefused.Error()) {
		t.Errorf("the same MsgId again: %q", p.Detail)
	}
	if n := a.messageCount(); n != before {
		t.Fatalf("a refused MsgId stored %d message(s)", n-before)
	}

	// The corrected file, with a new MsgId, names the order it corrects: version 2, and
	// the unsent version 1 is never sent.
	corrected := a.examplePayment("<MsgId>EXAMPLE-20261124-0001</MsgId>", "<MsgId>EXAMPLE-20261124-0002</MsgId>")
	r = a.do("acme", http.MethodPost, "/v1/messages", "application/json", jsonPayment(t, corrected, m.Subject, m.Period))
	r.expect(t, http.StatusCreated)
	var second queueAnswer
	r.decode(t, &second)
	if second.Version != 2 || second.Number == first.Number {
		t.Fatalf("the corrected file: %+v", second)
	}
	var v2 store.APIMessage
	a.do("acme", http.MethodGet, messagePath(second.Number), "", nil).decode(t, &v2)
	if v2.Subject != "EXAMPLE-20261124-0001" || v2.Period != period || v2.Version != 2 || v2.Channel != domain.ChannelBank ||
		!sameTransactions(v2.Transactions, exampleTransactions) {
		t.Errorf("version 2: %+v", v2)
	}
	a.do("acme", http.MethodGet, messagePath(first.Number), "", nil).decode(t, &m)
	if !m.DoNotSend {
		t.Errorf("version 1 is not do-not-send after version 2 was queued: %+v", m)
	}
	docs, err = a.st.Attachments(context.Background(), second.Number)
	if err != nil || len(docs) != 1 || docs[0].FileName != "payment.xml" || !bytes.Equal(docs[0].Content, corrected) {
		t.Errorf("the corrected file as stored: %d file(s), %v", len(docs), err)
	}

	// One page with payment orders and an e-invoice: each order carries its own
	// transactions, the e-invoice none.
	a.do("acme", http.MethodPut, "/v1/mail-profile", "application/json", []byte(localProfile)).expect(t, http.StatusOK)
	inv, ct4 := multipartInvoice(t, example(t))
	a.do("acme", http.MethodPost, "/v1/messages", ct4, inv).expect(t, http.StatusCreated)
	r = a.do("acme", http.MethodGet, "/v1/messages", "", nil)
	r.expect(t, http.StatusOK)
	var list messageList
	r.decode(t, &list)
	var raw struct {
		Messages []map[string]json.RawMessage `json:"messages"`
	}
	r.decode(t, &raw)
	if len(list.Messages) != 3 || len(raw.Messages) != 3 {
		t.Fatalf("the list: %+v", list.Messages)
	}
	for i, msg := range list.Messages {
		_, has := raw.Messages[i]["transactions"]
		switch msg.Type {
		case domain.TypePayment:
			if !sameTransactions(msg.Transactions, exampleTransactions) {
				t.Errorf("message %d in the list: %+v", msg.Number, msg.Transactions)
			}
		default:
			if has {
				t.Errorf("%s message %d has transactions: %s", msg.Type, msg.Number, raw.Messages[i]["transactions"])
			}
		}
	}
	a.do("other", http.MethodGet, messagePath(first.Number), "", nil).problem(t, http.StatusNotFound, ProblemNotFound)
}

// Issue 14 "Replies" and rule 13: the bank's status per transaction, with the reason of
// a rejection and what it means, reaches the environment as its other statuses do —
// once processed. The report goes the way the bank channel takes it (upload recorded,
// pain.002 composed as the simulator writes it, ApplyBankReport); process is asked for
// over the API and done as the workflow does it (store.Process).
func TestPaymentTransactionsShownOnceProcessed(t *testing.T) {
	a, flows := newPaymentAPI(t)
	ctx := context.Background()
	doc := a.examplePayment()
	body, ct := multipartPayment(t, doc)
	r := a.do("acme", http.MethodPost, "/v1/messages", ct, body)
	r.expect(t, http.StatusCreated)
	var q queueAnswer
	r.decode(t, &q)

	plan, err := a.st.BeginDelivery(ctx, q.Number)
	if err != nil || plan.Refused != "" || plan.Wait != "" {
		t.Fatalf("begin delivery: %+v %v", plan, err)
	}
	if err := a.st.RecordDelivered(ctx, q.Number, plan.Attempt, plan.Aanleverkenmerk, ""); err != nil {
		t.Fatal(err)
	}
	orig, err := domain.ReadPayment(doc)
	if err != nil {
		t.Fatal(err)
	}
	content, err := domain.ComposeStatusReport(orig, "RPT-PART-1", time.Now(), "PART", "", []domain.TxStatus{
		{OrgnlEndToEndID: "INV-2026-0311", Status: "RJCT", Reasons: []domain.StatusReason{{Code: "AC01"}}},
		{OrgnlEndToEndID: "INV-88-2026-17", Status: "ACSC"}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := domain.ReadStatusReport(content)
	if err != nil {
		t.Fatal(err)
	}
	env, err := a.st.Environment(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.st.ApplyBankReport(ctx, store.BankReport{EnvironmentID: env.ID, Name: "part-1.xml", Content: content, Report: rep})
	if err != nil || res.Message != q.Number || res.Status != domain.StatusAccepted {
		t.Fatalf("the report: %+v %v", res, err)
	}

	// Not processed yet: the environment sees the order queued, and no transaction status.
	var m store.APIMessage
	a.do("acme", http.MethodGet, messagePath(q.Number), "", nil).decode(t, &m)
	if m.Status != domain.StatusQueued || len(m.Replies) != 0 || !sameTransactions(m.Transactions, exampleTransactions) {
		t.Errorf("before process: status %s, replies %+v, transactions %+v", m.Status, m.Replies, m.Transactions)
	}
	r = a.do("acme", http.MethodPost, messagePath(q.Number)+"/process", "", nil)
	r.expect(t, http.StatusAccepted)
	if got := flows.sent(); len(got) != 1 || got[0] != fmt.Sprintf("%s %d", pipeline.SignalProcess, q.Number) {
		t.Errorf("signals: %v", got)
	}
	var answer store.APIMessage
	r.decode(t, &answer)
	if !sameTransactions(answer.Transactions, exampleTransactions) {
		t.Errorf("the process answer (before the workflow processed): %+v", answer.Transactions)
	}

	if _, err := a.st.Process(ctx, q.Number); err != nil {
		t.Fatal(err)
	}
	a.do("acme", http.MethodGet, messagePath(q.Number), "", nil).decode(t, &m)
	if m.Status != domain.StatusAccepted || !m.NeedsAction || len(m.Replies) != 1 || m.Replies[0].Code != "PART" || len(m.Transactions) != 2 {
		t.Fatalf("after process: %+v", m)
	}
	rejected, settled := m.Transactions[0], m.Transactions[1]
	if rejected.EndToEndID != "INV-2026-0311" || rejected.Status != "RJCT" || rejected.Reason != "AC01" ||
		!strings.Contains(rejected.ReasonText, "account number incorrect") {
		t.Errorf("the rejected transfer: %+v", rejected)
	}
	if settled.EndToEndID != "INV-88-2026-17" || settled.Status != "ACSC" || settled.Reason != "" || settled.ReasonText != "" {
		t.Errorf("the settled transfer: %+v", settled)
	}
}
