package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"koerier/domain"
	"koerier/internal/testenv"
	"koerier/pipeline"
	"koerier/store"
)

// examplePayment is the pain.001.001.09 example kept in the repository, its execution
// date moved to a week after the database's today (a date in the past is refused), with
// the replacements (old, new, old, new, …) applied.
func examplePayment(t *testing.T, s *testenv.Stack, replace ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "domain", "testdata", "payments", "example-pain001.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var due string
	if err := s.Store.DB().Get(&due, `SELECT to_char(current_date + 7, 'YYYY-MM-DD')`); err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(b), "2026-12-01", due, 1)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(doc, replace[i]) {
			t.Fatalf("the example holds no %q", replace[i])
		}
		doc = strings.ReplaceAll(doc, replace[i], replace[i+1])
	}
	return []byte(doc)
}

// localBank gives an environment a bank profile on the stack's bank simulator, as
// `starter environments add NAME --local-bank` does: a key of its own, registered at the
// bank, and the bank's host key pinned (or the given one instead).
func localBank(t *testing.T, s *testenv.Stack, env, hostKey string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Bank.AddUser(env, sshPub); err != nil {
		t.Fatal(err)
	}
	if hostKey == "" {
		hostKey = s.Bank.HostKey()
	}
	host, port := splitHostPort(t, s.Bank.Addr())
	if err := s.Store.SetBankProfile(context.Background(), env, store.BankProfile{Host: host, Port: port, User: env, PrivateKey: pem.EncodeToMemory(block),
		HostKey: hostKey, ArchiveDir: "archive", Local: true}, "test"); err != nil {
		t.Fatal(err)
	}
}

func payer(t *testing.T, s *testenv.Stack, env string) {
	t.Helper()
	if _, err := s.Store.AddEnvironment(context.Background(), store.Environment{Name: env}); err != nil {
		t.Fatal(err)
	}
	localBank(t, s, env, "")
}

// queuePayment queues a payment order and starts its workflow; subject and period
// name the order a corrected file is the next version of ("" for a new order).
func queuePayment(t *testing.T, s *testenv.Stack, env string, doc []byte, subject, period string) store.Queued {
	t.Helper()
	return queueAndStart(t, s, store.QueueRequest{Environment: env, Type: domain.TypePayment, Subject: subject, Period: period,
		Attachments: []domain.Attachment{{FileName: "betaling.xml", MimeType: "application/xml", Content: doc}}})
}

// bankSendReceive runs an environment's bank send/receive now and waits for it.
func bankSendReceive(t *testing.T, s *testenv.Stack, env string) pipeline.BankSendReceiveResult {
	t.Helper()
	var res pipeline.BankSendReceiveResult
	if err := runNow(t, s, pipeline.BankRunID(env), pipeline.BankSendReceiveWorkflowType,
		pipeline.BankSendReceiveInput{Environment: env, Trigger: "test"}, &res); err != nil {
		t.Fatalf("bank send/receive of %s: %v", env, err)
	}
	return res
}

// untilPayment runs the environment's bank send/receive until the order reaches want.
func untilPayment(t *testing.T, s *testenv.Stack, env string, number int64, want domain.Status) store.Message {
	t.Helper()
	var m store.Message
	testenv.Eventually(t, time.Minute, fmt.Sprintf("payment order %d %s", number, want), func() (bool, string) {
		r := bankSendReceive(t, s, env)
		m = messageStatus(t, s, number)
		return m.Status == want, fmt.Sprintf("%s (needs action %v: %s) after %+v", m.Status, m.NeedsAction, m.NeedsActionReason, r)
	})
	return m
}

func transactions(t *testing.T, s *testenv.Stack, number int64) map[string]store.PaymentTxView {
	t.Helper()
	txs, err := s.Store.PaymentTransactions(context.Background(), number)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.PaymentTxView{}
	for _, tx := range txs {
		out[tx.EndToEndID] = tx
	}
	return out
}

// Issue 14: a payment order queued through the API is uploaded to the bank once,
// technically accepted, accepted and settled, and the environment sees its transactions.
func TestPaymentAcceptedAndSettledThroughTheAPI(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Bank: true})
	base := startAPI(t, s)
	c := apiEnv(t, s, base, store.Environment{Name: "betaler"})
	localBank(t, s, "betaler", "")
	body, ct := queueForm(t, map[string]string{"type": "payment"}, apiFile{name: "betaling.xml", mimeType: "application/xml",
		content: examplePayment(t, s)})
	var q apiQueued
	c.do(c.request(http.MethodPost, "/v1/messages", bytes.NewReader(body), ct)).decode(t, &q)
	if q.Number == 0 {
		t.Fatalf("queued: %+v", q)
	}
	m := untilPayment(t, s, "betaler", q.Number, domain.StatusAccepted)
	if m.NeedsAction {
		t.Errorf("a settled order needs no action: %s", m.NeedsActionReason)
	}
	for id, tx := range transactions(t, s, q.Number) {
		if tx.Status != "ACSC" {
			t.Errorf("transaction %s: %+v, want settled", id, tx)
		}
	}
	if n := s.Bank.Received("betaler", "EXAMPLE-20261124-0001"); n != 1 {
		t.Errorf("the bank received the file %d times, want 1", n)
	}
	var view struct {
		Status       string `json:"status"`
		Transactions []struct {
			EndToEndID string `json:"end_to_end_id"`
			Status     string `json:"status"`
		} `json:"transactions"`
	}
	mustCLI(t, "process", fmt.Sprint(q.Number))
	testenv.Eventually(t, 30*time.Second, "the environment sees the order settled", func() (bool, string) {
		c.get(fmt.Sprintf("/v1/messages/%d", q.Number)).decode(t, &view)
		settled := len(view.Transactions) == 2
		for _, tx := range view.Transactions {
			settled = settled && tx.Status == "ACSC"
		}
		return view.Status == "accepted" && settled, fmt.Sprintf("%+v", view)
	})
}

// One transaction rejected by the bank (creditor "SIM AC01"): the order is partly
// accepted and needs action, and the transaction keeps its reason with an explanation.
func TestPaymentOneTransactionRejected(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Bank: true})
	payer(t, s, "betaler")
	q := queuePayment(t, s, "betaler", examplePayment(t, s, "Inktservice Oost V.O.F.", "SIM AC01"), "", "")
	testenv.Eventually(t, time.Minute, "the rejected transaction's reason", func() (bool, string) {
		bankSendReceive(t, s, "betaler")
		tx := transactions(t, s, q.Number)["INV-88-2026-17"]
		return tx.Status == "RJCT" && tx.Reason == "AC01", fmt.Sprintf("%+v", tx)
	})
	tx := transactions(t, s, q.Number)["INV-88-2026-17"]
	if tx.ReasonText == "" || !strings.Contains(strings.ToLower(tx.ReasonText), "account") {
		t.Errorf("AC01 without a readable explanation: %+v", tx)
	}
	m := messageStatus(t, s, q.Number)
	if !m.NeedsAction {
		t.Errorf("a partly rejected order needs action: %s %s", m.Status, m.NeedsActionReason)
	}
	out := mustCLI(t, "show", fmt.Sprint(q.Number), "--json")
	if !strings.Contains(out, `"end_to_end_id": "INV-88-2026-17"`) || !strings.Contains(out, "AC01") {
		t.Errorf("starter show --json does not hold the transactions: %s", out)
	}
}

// A whole file rejected (MsgId SIM-RJCT…) cannot be restored (the bank has seen its
// MsgId); the corrected file, with a new MsgId, goes as the order's next version and is
// settled. A MsgId used before is refused at queue time.
func TestPaymentRejectedThenCorrectedAsNewVersion(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Bank: true})
	payer(t, s, "betaler")
	v1 := queuePayment(t, s, "betaler", examplePayment(t, s, "EXAMPLE-20261124-0001", "SIM-RJCT-0001"), "", "")
	untilPayment(t, s, "betaler", v1.Number, domain.StatusRejected)
	if out, err := cli(t, "restore", fmt.Sprint(v1.Number)); err == nil || !strings.Contains(out, "new MsgId") {
		t.Fatalf("restore of a rejected payment file: %v %s", err, out)
	}
	_, err := s.Store.Queue(context.Background(), store.QueueRequest{Environment: "betaler", Type: domain.TypePayment,
		Attachments: []domain.Attachment{{FileName: "again.xml", Content: examplePayment(t, s, "EXAMPLE-20261124-0001", "SIM-RJCT-0001")}}})
	if err == nil || !strings.Contains(err.Error(), "MsgId SIM-RJCT-0001 was used by message") {
		t.Fatalf("a reused MsgId must be refused at queue time: %v", err)
	}
	v2 := queuePayment(t, s, "betaler", examplePayment(t, s, "EXAMPLE-20261124-0001", "CORRECTED-0001"), v1.Subject, v1.Period)
	if v2.Version != 2 {
		t.Fatalf("the corrected file: %+v", v2)
	}
	untilPayment(t, s, "betaler", v2.Number, domain.StatusAccepted)
	if n := s.Bank.Received("betaler", "SIM-RJCT-0001"); n != 1 {
		t.Errorf("the rejected file reached the bank %d times, want 1", n)
	}
}

// An upload whose answer is lost after the rename (the worker's view: it may or may not
// be at the bank) is looked up, found and adopted; an upload cut off mid-write leaves a
// half file the bank never reads, which is removed and uploaded again. Either way the
// bank receives the file once.
func TestPaymentInterruptedUploadsReachTheBankOnce(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Bank: true})
	payer(t, s, "betaler")
	s.Bank.DropAfterRename(1)
	a := queuePayment(t, s, "betaler", examplePayment(t, s, "EXAMPLE-20261124-0001", "LOST-ANSWER-1"), "", "")
	untilPayment(t, s, "betaler", a.Number, domain.StatusAccepted)
	s.Bank.DropNext(1, 512)
	b := queuePayment(t, s, "betaler", examplePayment(t, s, "EXAMPLE-20261124-0001", "CUT-OFF-1"), "", "")
	untilPayment(t, s, "betaler", b.Number, domain.StatusAccepted)
	for _, id := range []string{"LOST-ANSWER-1", "CUT-OFF-1"} {
		if n := s.Bank.Received("betaler", id); n != 1 {
			t.Errorf("the bank received %s %d times, want 1", id, n)
		}
	}
	if m := messageStatus(t, s, a.Number); m.NeedsAction {
		t.Errorf("an adopted upload needs no operator: %s", m.NeedsActionReason)
	}
}

// A bank whose host key is not the pinned one is refused before anything is sent: the
// order waits and needs action with the environment's name and what to do.
func TestPaymentHostKeyChangedRefused(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Bank: true})
	if _, err := s.Store.AddEnvironment(context.Background(), store.Environment{Name: "betaler"}); err != nil {
		t.Fatal(err)
	}
	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := ssh.NewPublicKey(other)
	localBank(t, s, "betaler", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(otherKey))))
	q := queuePayment(t, s, "betaler", examplePayment(t, s), "", "")
	if err := runNow(t, s, pipeline.BankRunID("betaler"), pipeline.BankSendReceiveWorkflowType,
		pipeline.BankSendReceiveInput{Environment: "betaler", Trigger: "test"}, nil); err == nil || !strings.Contains(err.Error(), "environment betaler") || !strings.Contains(err.Error(), "host key") {
		t.Fatalf("fetching reports from a bank with another host key: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, "the order needs action", func() (bool, string) {
		m := messageStatus(t, s, q.Number)
		return m.NeedsAction && strings.Contains(m.NeedsActionReason, "environment betaler") && strings.Contains(m.NeedsActionReason, "host key"),
			string(m.Status) + " " + m.NeedsActionReason
	})
	if n := s.Bank.Received("betaler", "EXAMPLE-20261124-0001"); n != 0 {
		t.Fatalf("the file reached a bank whose host key was not the pinned one (%d times)", n)
	}
}
