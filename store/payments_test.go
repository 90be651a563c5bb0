package store_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/internal/testdb"
	"koerier/store"
)

// examplePayment is the example pain.001 (two transfers) with its execution date moved
// to a week after the database's today, so that the test passes whatever day it runs;
// msgID replaces its MsgId when not "".
func (f *fixture) examplePayment(msgID string) []byte {
	f.t.Helper()
	b, err := os.ReadFile("../domain/testdata/payments/example-pain001.xml")
	if err != nil {
		f.t.Fatal(err)
	}
	var due string
	if err := f.DB().GetContext(ctx, &due, `SELECT to_char(current_date + 7, 'YYYY-MM-DD')`); err != nil {
		f.t.Fatal(err)
	}
	s := strings.Replace(string(b), "<Dt>2026-12-01</Dt>", "<Dt>"+due+"</Dt>", 1)
	if msgID != "" {
		s = strings.Replace(s, "<MsgId>EXAMPLE-20261124-0001</MsgId>", "<MsgId>"+msgID+"</MsgId>", 1)
	}
	if s == string(b) {
		f.t.Fatal("the example's execution date was not found to move")
	}
	return []byte(s)
}

// bankStore is a store with environment acme that has a bank profile.
func bankStore(t *testing.T) (*fixture, store.Environment) {
	t.Helper()
	f := newMailStore(t, testdb.New(t), newBox(t))
	f.env("acme")
	p, _ := bankProfile(t)
	if err := f.SetBankProfile(ctx, "acme", p, "tester"); err != nil {
		t.Fatal(err)
	}
	return f, f.mustEnv("acme")
}

func (f *fixture) queuePayment(content []byte, ref string) (store.Queued, error) {
	return f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypePayment, ClientReference: ref,
		Attachments: []domain.Attachment{{FileName: "betaling.xml", MimeType: "text/xml", Content: content}}})
}

func TestQueuePaymentStoresItsTransactions(t *testing.T) {
	f, acme := bankStore(t)
	file := f.examplePayment("")
	q, err := f.queuePayment(file, "ref-1")
	if err != nil {
		t.Fatal(err)
	}
	var month string
	if err := f.DB().GetContext(ctx, &month, `SELECT to_char(current_date + 7, 'YYYY-MM')`); err != nil {
		t.Fatal(err)
	}
	if q.Subject != "EXAMPLE-20261124-0001" || q.Period != month || q.Version != 1 || q.Status != domain.StatusQueued {
		t.Fatalf("queued as %+v; want subject = MsgId, period %s", q, month)
	}
	m, err := f.Message(ctx, q.Number)
	if err != nil || m.Channel != domain.ChannelBank {
		t.Fatalf("channel %q (%v)", m.Channel, err)
	}
	if n := f.count(`SELECT count(*) FROM payments WHERE message_number = $1 AND environment_id = $2 AND msg_id = 'EXAMPLE-20261124-0001'
		AND version = 'pain.001.001.09'`, q.Number, acme.ID); n != 1 {
		t.Fatalf("payments rows: %d", n)
	}
	txs, err := f.PaymentTransactions(ctx, q.Number)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.PaymentTxView{
		{EndToEndID: "INV-2026-0311", Amount: "1250.00", Currency: "EUR", Creditor: "Papiergroothandel Noord B.V.", CreditorIBAN: "NL39RABO0300065264"},
		{EndToEndID: "INV-88-2026-17", Amount: "485.50", Currency: "EUR", Creditor: "Inktservice Oost V.O.F.", CreditorIBAN: "NL36INGB0007654321"},
	}
	if len(txs) != len(want) || txs[0] != want[0] || txs[1] != want[1] {
		t.Fatalf("transactions:\n got %+v\nwant %+v", txs, want)
	}
	// The same call again (client reference) is the same message, not a refused MsgId.
	again, err := f.queuePayment(file, "ref-1")
	if err != nil || !again.Existing || again.Number != q.Number {
		t.Fatalf("retried queue call: %+v %v", again, err)
	}
}

// A bank refuses a file whose MsgId it has seen: the environment is told at queue time,
// and nothing is stored.
func TestQueuePaymentRefusesAUsedMsgId(t *testing.T) {
	f, _ := bankStore(t)
	q, err := f.queuePayment(f.examplePayment(""), "")
	if err != nil {
		t.Fatal(err)
	}
	messages := f.count(`SELECT count(*) FROM messages`)
	_, err = f.queuePayment(f.examplePayment(""), "another-ref")
	want := "MsgId EXAMPLE-20261124-0001 was used by message " + fmt.Sprint(q.Number) + " (status queued)"
	if !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "DUPL") ||
		!strings.Contains(err.Error(), "give the file a new MsgId") {
		t.Fatalf("the same MsgId again: %v", err)
	}
	if n := f.count(`SELECT count(*) FROM messages`); n != messages {
		t.Fatalf("a refused payment stored %d message(s)", n-messages)
	}
	if n := f.count(`SELECT count(*) FROM payment_transactions`); n != 2 {
		t.Fatalf("a refused payment stored transactions: %d", n)
	}
	// Another MsgId is another payment order.
	if _, err := f.queuePayment(f.examplePayment("EXAMPLE-20261124-0002"), ""); err != nil {
		t.Fatal(err)
	}
}

func TestQueuePaymentRefusals(t *testing.T) {
	f, _ := bankStore(t)
	good := string(f.examplePayment(""))
	for name, c := range map[string]struct {
		content string
		rule    string
	}{
		"control sum":   {strings.Replace(good, "<CtrlSum>1735.50</CtrlSum>", "<CtrlSum>1735.51</CtrlSum>", 1), "payment.ctrlsum"},
		"creditor IBAN": {strings.Replace(good, "NL39RABO0300065264", "NL39RABO0300065265", 1), "payment.iban"},
		"not XML":       {"this is no payment file", "payment.well-formed"},
	} {
		_, err := f.queuePayment([]byte(c.content), "")
		var perr *domain.PaymentError
		if !errors.Is(err, store.ErrInvalid) || !errors.As(err, &perr) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if c.rule != "" && (perr.Rule != c.rule || !strings.HasPrefix(err.Error(), c.rule+":")) {
			t.Errorf("%s: rule %q, error %v", name, perr.Rule, err)
		}
	}
	// The execution date is compared with the database's today.
	var yesterday string
	if err := f.DB().GetContext(ctx, &yesterday, `SELECT to_char(current_date - 1, 'YYYY-MM-DD')`); err != nil {
		t.Fatal(err)
	}
	var due string
	if err := f.DB().GetContext(ctx, &due, `SELECT to_char(current_date + 7, 'YYYY-MM-DD')`); err != nil {
		t.Fatal(err)
	}
	_, err := f.queuePayment([]byte(strings.Replace(good, due, yesterday, 1)), "")
	var perr *domain.PaymentError
	if !errors.As(err, &perr) || perr.Rule != "payment.execution-date" {
		t.Fatalf("execution date yesterday: %v", err)
	}
	// A corrected file, with a new MsgId, queued under the order it corrects (its subject
	// and period) is that order's next version; the first is do-not-send while unsent.
	withID := func(id string) []byte {
		return []byte(strings.Replace(good, "EXAMPLE-20261124-0001</MsgId>", id+"</MsgId>", 1))
	}
	v1, err := f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypePayment,
		Attachments: []domain.Attachment{{FileName: "betaling.xml", Content: withID("CORR-0001")}}})
	if err != nil || v1.Subject != "CORR-0001" || v1.Version != 1 {
		t.Fatalf("first file: %+v %v", v1, err)
	}
	v2, err := f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypePayment, Subject: v1.Subject, Period: v1.Period,
		Attachments: []domain.Attachment{{FileName: "betaling.xml", Content: withID("CORR-0002")}}})
	if err != nil || v2.Subject != "CORR-0001" || v2.Version != 2 || len(v2.Superseded) != 1 || v2.Superseded[0] != v1.Number {
		t.Fatalf("corrected file as version 2: %+v %v", v2, err)
	}
	_, err = f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypePayment, Attachments: []domain.Attachment{
		{FileName: "a.xml", Content: []byte(good)}, {FileName: "b.xml", Content: []byte(good)}}})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "one file") {
		t.Fatalf("two files: %v", err)
	}
	// An environment without a bank profile has no bank to pay through.
	f.env("beta")
	_, err = f.Queue(ctx, store.QueueRequest{Environment: "beta", Type: domain.TypePayment,
		Attachments: []domain.Attachment{{FileName: "betaling.xml", Content: []byte(good)}}})
	if !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "no bank profile") || !strings.Contains(err.Error(), "--local-bank") {
		t.Fatalf("environment without a bank: %v", err)
	}
	// Only the two versions above were stored.
	if n := f.count(`SELECT count(*) FROM messages`); n != 2 {
		t.Fatalf("refused payments stored %d message(s)", n-2)
	}
	if n := f.count(`SELECT count(*) FROM payments`); n != 2 {
		t.Fatalf("refused payments stored %d payments row(s)", n-2)
	}
}

// sentPayment queues the example and records its upload, as the bank channel's
// delivery does: kenmerk = aanleverkenmerk.
func (f *fixture) sentPayment(msgID string) (store.Queued, domain.PaymentFile) {
	f.t.Helper()
	content := f.examplePayment(msgID)
	q, err := f.queuePayment(content, "")
	if err != nil {
		f.t.Fatal(err)
	}
	plan, err := f.BeginDelivery(ctx, q.Number)
	if err != nil || plan.Refused != "" || plan.Wait != "" {
		f.t.Fatalf("begin delivery: %v %+v", err, plan)
	}
	if err := f.RecordDelivered(ctx, q.Number, plan.Attempt, plan.Aanleverkenmerk, ""); err != nil {
		f.t.Fatal(err)
	}
	p, err := domain.ReadPayment(content)
	if err != nil {
		f.t.Fatal(err)
	}
	return q, p
}

// report composes the bank's pain.002 on orig, as the simulator writes it, and reads
// it back as the bank channel's receive does.
func (f *fixture) report(env store.Environment, orig domain.PaymentFile, name string, at time.Time, group, reason string,
	txs ...domain.TxStatus) store.BankReport {
	f.t.Helper()
	content, err := domain.ComposeStatusReport(orig, "RPT-"+name, at, group, reason, txs)
	if err != nil {
		f.t.Fatal(err)
	}
	rep, err := domain.ReadStatusReport(content)
	if err != nil {
		f.t.Fatal(err)
	}
	return store.BankReport{EnvironmentID: env.ID, Name: name + ".xml", Content: content, Report: rep}
}

func (f *fixture) applyReport(r store.BankReport) store.BankReportResult {
	f.t.Helper()
	res, err := f.ApplyBankReport(ctx, r)
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

func (f *fixture) txStatuses(number int64) map[string]store.PaymentTxView {
	f.t.Helper()
	txs, err := f.PaymentTransactions(ctx, number)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]store.PaymentTxView{}
	for _, t := range txs {
		out[t.EndToEndID] = t
	}
	return out
}

// Rule 4 for payment orders: ACTC, then ACSC, raises the order to accepted, and a late
// ACTC takes it back neither for the order nor for a transaction.
func TestBankReportAcceptedThenSettled(t *testing.T) {
	f, acme := bankStore(t)
	q, orig := f.sentPayment("")
	at := time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)
	res := f.applyReport(f.report(acme, orig, "actc", at, "ACTC", ""))
	if res.Message != q.Number || !res.Raised || res.Status != domain.StatusReceiptConfirmed || res.Unknown != 0 || res.AlreadySeen {
		t.Fatalf("ACTC: %+v", res)
	}
	res = f.applyReport(f.report(acme, orig, "acsc", at.Add(time.Hour), "ACSC", ""))
	if !res.Raised || res.Status != domain.StatusAccepted || len(res.Rejected) != 0 {
		t.Fatalf("ACSC: %+v", res)
	}
	for id, tx := range f.txStatuses(q.Number) {
		if tx.Status != "ACSC" || tx.Reason != "" {
			t.Errorf("transaction %s after ACSC: %+v", id, tx)
		}
	}
	late := f.applyReport(f.report(acme, orig, "actc-late", at.Add(2*time.Hour), "ACTC", ""))
	if late.Raised || late.Status != domain.StatusAccepted {
		t.Fatalf("a late ACTC: %+v", late)
	}
	if tx := f.txStatuses(q.Number)["INV-2026-0311"]; tx.Status != "ACSC" {
		t.Fatalf("a late ACTC took a transaction back: %+v", tx)
	}
	replies, err := f.Replies(ctx, q.Number)
	if err != nil || len(replies) != 3 || replies[0].Code != "ACTC" || replies[1].Code != "ACSC" || replies[1].Status != domain.StatusAccepted {
		t.Fatalf("replies kept: %+v %v", replies, err)
	}
	// Each report is a reply document of the order, on the bank channel.
	if n := f.count(`SELECT count(*) FROM messages WHERE reply_to = $1 AND channel = 'bank' AND direction = 'in'
		AND EXISTS (SELECT 1 FROM attachments a WHERE a.message_number = messages.number AND a.file_name LIKE '%.xml')`, q.Number); n != 3 {
		t.Fatalf("reply documents: %d", n)
	}
	if m, _ := f.Message(ctx, q.Number); m.NeedsAction {
		t.Fatalf("a settled order needs action: %s", m.NeedsActionReason)
	}
}

// PART: the order is accepted and needs action; the rejected transaction keeps its
// reason code and the text that explains it.
func TestBankReportPartiallyAccepted(t *testing.T) {
	f, acme := bankStore(t)
	q, orig := f.sentPayment("")
	res := f.applyReport(f.report(acme, orig, "part", time.Now(), "PART", "",
		domain.TxStatus{OrgnlEndToEndID: "INV-2026-0311", Status: "RJCT", Reasons: []domain.StatusReason{{Code: "AC01"}}},
		domain.TxStatus{OrgnlEndToEndID: "INV-88-2026-17", Status: "ACSC"}))
	if !res.Raised || res.Status != domain.StatusAccepted || len(res.Rejected) != 1 ||
		!strings.HasPrefix(res.Rejected[0], "INV-2026-0311: AC01 account number incorrect") {
		t.Fatalf("PART: %+v", res)
	}
	txs := f.txStatuses(q.Number)
	if tx := txs["INV-2026-0311"]; tx.Status != "RJCT" || tx.Reason != "AC01" || !strings.Contains(tx.ReasonText, "account number incorrect") {
		t.Fatalf("rejected transaction: %+v", tx)
	}
	if tx := txs["INV-88-2026-17"]; tx.Status != "ACSC" || tx.Reason != "" {
		t.Fatalf("accepted transaction: %+v", tx)
	}
	m, err := f.Message(ctx, q.Number)
	if err != nil || !m.NeedsAction || !strings.HasPrefix(m.NeedsActionReason, "bank status PART") ||
		!strings.Contains(m.NeedsActionReason, "INV-2026-0311: AC01") {
		t.Fatalf("needs action: %v %q (%v)", m.NeedsAction, m.NeedsActionReason, err)
	}
}

func TestBankReportRejected(t *testing.T) {
	f, acme := bankStore(t)
	q, orig := f.sentPayment("")
	res := f.applyReport(f.report(acme, orig, "rjct", time.Now(), "RJCT", "FF01"))
	if !res.Raised || res.Status != domain.StatusRejected || len(res.Rejected) != 2 {
		t.Fatalf("RJCT: %+v", res)
	}
	for id, tx := range f.txStatuses(q.Number) {
		if tx.Status != "RJCT" || tx.Reason != "FF01" || !strings.Contains(tx.ReasonText, "invalid file format") {
			t.Errorf("transaction %s of a rejected file: %+v", id, tx)
		}
	}
	replies, err := f.Replies(ctx, q.Number)
	if err != nil || len(replies) != 1 || replies[0].ErrorCode != "FF01" || !strings.Contains(replies[0].ErrorDescription, "invalid file format") {
		t.Fatalf("reply: %+v %v", replies, err)
	}
	if m, _ := f.Message(ctx, q.Number); !m.NeedsAction || !strings.Contains(m.NeedsActionReason, "new MsgId") {
		t.Fatalf("a rejected order must say what to do: %q", m.NeedsActionReason)
	}
}

// The same file fetched again (its move on the server failed) stores nothing twice.
func TestBankReportTwiceIsAlreadySeen(t *testing.T) {
	f, acme := bankStore(t)
	q, orig := f.sentPayment("")
	r := f.report(acme, orig, "acsc", time.Now(), "ACSC", "")
	first := f.applyReport(r)
	messages, events, lines := f.count(`SELECT count(*) FROM messages`), f.count(`SELECT count(*) FROM status_events`),
		f.count(`SELECT count(*) FROM communication_log`)
	again := f.applyReport(r)
	if !again.AlreadySeen || again.Message != q.Number || again.Document != first.Document || again.Status != domain.StatusAccepted || again.Raised {
		t.Fatalf("the same report again: %+v (first %+v)", again, first)
	}
	if f.count(`SELECT count(*) FROM messages`) != messages || f.count(`SELECT count(*) FROM status_events`) != events ||
		f.count(`SELECT count(*) FROM communication_log`) != lines {
		t.Fatal("the same report again stored something")
	}
}

// A report that links to no payment order of the environment, or cannot be read, is an
// unknown reply of the environment with the file attached (rule 5).
func TestBankReportUnknownBecomesONB(t *testing.T) {
	f, acme := bankStore(t)
	_, orig := f.sentPayment("")
	stranger := orig
	stranger.MsgID = "NEVER-QUEUED-1"
	res := f.applyReport(f.report(acme, stranger, "stranger", time.Now(), "ACSC", ""))
	if res.Unknown == 0 || res.Message != 0 || res.Document != res.Unknown {
		t.Fatalf("report on an unknown MsgId: %+v", res)
	}
	onb, err := f.UnknownReply(ctx, res.Unknown)
	if err != nil || !onb.Open || onb.Attachments != 1 || !strings.Contains(onb.Reason, "NEVER-QUEUED-1") {
		t.Fatalf("unknown reply: %+v %v", onb, err)
	}
	if n := f.count(`SELECT count(*) FROM messages WHERE number = $1 AND environment_id = $2 AND channel = 'bank'`, res.Unknown, acme.ID); n != 1 {
		t.Fatal("the unknown reply is not the environment's, on the bank channel")
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE message_number = $1 AND level = 'F'`, res.Unknown); n != 1 {
		t.Fatalf("F lines: %d", n)
	}
	// Another environment's payment order is not this environment's.
	f.env("beta")
	p, _ := bankProfile(t)
	if err := f.SetBankProfile(ctx, "beta", p, "tester"); err != nil {
		t.Fatal(err)
	}
	other := f.applyReport(f.report(f.mustEnv("beta"), orig, "acme-order", time.Now(), "ACSC", ""))
	if other.Unknown == 0 || other.Message != 0 {
		t.Fatalf("a report at beta on acme's MsgId: %+v", other)
	}

	bad := store.BankReport{EnvironmentID: acme.ID, Name: "garbage.xml", Content: []byte("<nonsense/>"),
		Unreadable: "statusreport.namespace: not a pain.002"}
	res = f.applyReport(bad)
	if onb, err := f.UnknownReply(ctx, res.Unknown); res.Unknown == 0 || err != nil || !strings.Contains(onb.Reason, "statusreport.namespace") {
		t.Fatalf("unreadable report: %+v %+v %v", res, onb, err)
	}
	if again := f.applyReport(bad); !again.AlreadySeen || again.Unknown != res.Unknown {
		t.Fatalf("unreadable report again: %+v", again)
	}
}

// Rule 11: a report on an order whose upload has no known outcome proves the bank has
// the file; the delivery is recorded, not made again.
func TestBankReportAdoptsAnInterruptedUpload(t *testing.T) {
	f, acme := bankStore(t)
	content := f.examplePayment("")
	q, err := f.queuePayment(content, "")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := f.BeginDelivery(ctx, q.Number)
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := domain.ReadPayment(content)
	res := f.applyReport(f.report(acme, orig, "actc", time.Now(), "ACTC", ""))
	if res.Status != domain.StatusReceiptConfirmed {
		t.Fatalf("ACTC on an open upload: %+v", res)
	}
	again, err := f.BeginDelivery(ctx, q.Number)
	if err != nil || again.Kenmerk != plan.Aanleverkenmerk || again.Uncertain {
		t.Fatalf("the upload is not recorded: %+v %v", again, err)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE message_number = $1 AND description LIKE '%found at the bank after an interrupted upload%'`,
		q.Number); n != 1 {
		t.Fatalf("adoption line: %d", n)
	}
}

func TestPaymentQueriesUseAnIndex(t *testing.T) {
	f, acme := bankStore(t)
	explain := f.explainer()
	for name, plan := range map[string]string{
		"PaymentOrder":        explain(store.PaymentOrderQuery, acme.ID, "X"),
		"PaymentTransactions": explain(store.PaymentTransactionsQuery, 1),
	} {
		if !strings.Contains(plan, "Index") || strings.Contains(plan, "Seq Scan") {
			t.Errorf("%s does not use an index:\n%s", name, plan)
		}
	}
}

// Review fixes of rule 23. A report also adopts a try that was closed as not having
// arrived, or an order with no try on record: the bank has the MsgId, and the file is
// never uploaded again.
func TestBankReportAdoptsAClosedTryAndAnOrderWithoutOne(t *testing.T) {
	f, acme := bankStore(t)
	content := f.examplePayment("CLOSED-1")
	q, err := f.queuePayment(content, "")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := f.BeginDelivery(ctx, q.Number)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.DropUnaccepted(ctx, q.Number, plan.Attempt, plan.StartedAt); err != nil {
		t.Fatal(err)
	}
	orig, _ := domain.ReadPayment(content)
	f.applyReport(f.report(acme, orig, "closed-actc", time.Now(), "ACTC", ""))
	if again, err := f.BeginDelivery(ctx, q.Number); err != nil || again.Kenmerk == "" {
		t.Fatalf("a closed try named by a report must be adopted, not uploaded again: %+v %v", again, err)
	}

	content2 := f.examplePayment("NO-TRY-1")
	q2, err := f.queuePayment(content2, "")
	if err != nil {
		t.Fatal(err)
	}
	orig2, _ := domain.ReadPayment(content2)
	if res := f.applyReport(f.report(acme, orig2, "no-try-actc", time.Now(), "ACTC", "")); res.Status != domain.StatusReceiptConfirmed {
		t.Fatalf("a report on an order without a try: %+v", res)
	}
	if again, err := f.BeginDelivery(ctx, q2.Number); err != nil || again.Kenmerk == "" {
		t.Fatalf("an order the bank reported on must not be uploaded: %+v %v", again, err)
	}
}

// A corrected file is the next version of an order only while the bank took none of
// its versions, names both subject and period, and names an order that exists.
func TestPaymentCorrectionOnlyBesideWhatTheBankDidNotTake(t *testing.T) {
	f, acme := bankStore(t)
	v1, orig := f.sentPayment("TAKEN-1")
	f.applyReport(f.report(acme, orig, "taken-acsc", time.Now(), "ACSC", ""))
	correct := func(msgID, subject, period string) error {
		_, err := f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypePayment, Subject: subject, Period: period,
			Attachments: []domain.Attachment{{FileName: "b.xml", Content: f.examplePayment(msgID)}}})
		return err
	}
	if err := correct("TAKEN-2", v1.Subject, v1.Period); !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "may be paid") {
		t.Fatalf("a correction beside a settled version: %v", err)
	}
	if err := correct("TAKEN-3", v1.Subject, ""); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "both") {
		t.Fatalf("a subject without a period: %v", err)
	}
	if err := correct("TAKEN-4", "NOBODY", v1.Period); !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "no payment order") {
		t.Fatalf("a correction of no order: %v", err)
	}
	// An upload of unknown outcome may be at the bank: no correction beside it either.
	open, err := f.queuePayment(f.examplePayment("OPEN-1"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.BeginDelivery(ctx, open.Number); err != nil {
		t.Fatal(err)
	}
	if err := correct("OPEN-2", open.Subject, open.Period); !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "outcome is not known") {
		t.Fatalf("a correction beside an open upload: %v", err)
	}
}

// A MsgId stays used after clean-up removed the order that used it.
func TestUsedMsgIdOutlivesCleanup(t *testing.T) {
	f, _ := bankStore(t)
	q, err := f.queuePayment(f.examplePayment("OLD-1"), "")
	if err != nil {
		t.Fatal(err)
	}
	f.exec(`DELETE FROM messages WHERE number = $1`, q.Number)
	_, err = f.queuePayment(f.examplePayment("OLD-1"), "")
	if !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "removed by clean-up since") {
		t.Fatalf("a MsgId of a cleaned-up order: %v", err)
	}
}
