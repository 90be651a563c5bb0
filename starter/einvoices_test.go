package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"koerier/internal/testenv"
	"koerier/store"
)

// exampleInvoice is the README's example (Peppol BIS Billing 3.0), addressed to
// crediteuren@klant.example.
func exampleInvoice(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "internal", "demo", "example-invoice.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The README's e-invoice walk-through on a real stack: the local mail server over
// TLS, a worker, Temporal. Two environments on the local server, as `make run` and
// the README make them; verkoop (auto-send) queues the example invoice to inkoop's
// mailbox; inkoop's e-mail send/receive takes it in and `einvoices list` shows it.
// Without auto-send, verkoop's own `mail send-receive` sends what is due. Queueing
// refuses a document that fails its check, naming the rule.
func TestEInvoiceThroughTheLocalMailServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal, a worker and the local mail server")
	}
	catalogEnv(t)
	stack := testenv.NewStack(t, testenv.StackOptions{Mail: true})
	for _, args := range [][]string{{"verkoop", "--auto-send"}, {"inkoop"}} {
		env := args[0]
		out, err := run(t, append([]string{"environments", "add", "--local-mail"}, args...)...)
		if err != nil || !strings.Contains(out, "e-mail profile from "+env+"@koerier.test") || !strings.Contains(out, "on the local mail server") ||
			!strings.Contains(out, "schedule koerier-mail-"+env+" created") {
			t.Fatalf("add %s --local-mail: %v\n%s", env, err, out)
		}
	}
	if out, err := run(t, "environments", "set", "verkoop", "--local-mail"); err != nil || !strings.Contains(out, "schedule koerier-mail-verkoop updated") {
		t.Fatalf("set --local-mail again: %v\n%s", err, out)
	}

	invoice := exampleInvoice(t)
	wrongSum := strings.Replace(string(invoice), `<cbc:PayableAmount currencyID="EUR">447.70</cbc:PayableAmount>`,
		`<cbc:PayableAmount currencyID="EUR">447.07</cbc:PayableAmount>`, 1)
	if wrongSum == string(invoice) {
		t.Fatal("the example's payable amount moved: update this test")
	}
	for _, c := range []struct {
		name, content string
		want          []string
	}{
		{"sums.xml", wrongSum, []string{"the e-invoice is not queued", "\n  rule ", "447.07"}},
		{"notes.xml", "<notes><note>no invoice</note></notes>", []string{"the e-invoice is not queued", "\n  rule "}},
	} {
		_, err := run(t, "queue", "--env", "verkoop", "--type", "einvoice", "--file", writeFile(t, c.name, []byte(c.content)))
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Fatalf("queue %s: got %v, want %q", c.name, err, w)
			}
		}
	}
	if _, err := run(t, "queue", "--env", "verkoop", "--type", "btw", "--file", writeFile(t, "f.xml", invoice)); err == nil ||
		!strings.Contains(err.Error(), `required flag(s) "period", "subject" not set`) {
		t.Fatalf("a declaration without subject and period: %v", err)
	}

	out, err := run(t, "queue", "--env", "verkoop", "--type", "einvoice", "--file", writeFile(t, "example-invoice.xml", invoice),
		"--to", "inkoop@koerier.test", "--json")
	var q store.Queued
	if err != nil || json.Unmarshal([]byte(out), &q) != nil || q.Number == 0 {
		t.Fatalf("queue the example: %v\n%s", err, out)
	}
	// The invoice arrives in inkoop's INBOX (mail read before is moved out of it).
	inInbox := func(invoice string) {
		t.Helper()
		testenv.Eventually(t, time.Minute, "invoice "+invoice+" in inkoop's INBOX", func() (bool, string) {
			for _, mb := range stack.Mail.Overview().Mailboxes {
				for _, f := range mb.Folders {
					for _, m := range f.Messages {
						if mb.Address == "inkoop@koerier.test" && f.Name == "INBOX" && strings.Contains(m.Subject, invoice) {
							return true, ""
						}
					}
				}
			}
			return false, "not there"
		})
	}
	inInbox("2026-0417")

	out, err = run(t, "mail", "send-receive", "--env", "inkoop", "--json")
	if err != nil || !strings.Contains(out, `"invoices": 1`) {
		t.Fatalf("mail send-receive --env inkoop: %v\n%s", err, out)
	}
	out, err = run(t, "einvoices", "list", "--env", "inkoop", "--json")
	var got []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 {
		t.Fatalf("einvoices list --json: %v\n%s", err, out)
	}
	for k, want := range map[string]any{"invoice_number": "2026-0417", "supplier": "Drukkerij Voorbeeld B.V.", "amount": "447.70", "currency": "EUR"} {
		if got[0][k] != want {
			t.Errorf("einvoices list --json: %s is %v, want %v\n%s", k, got[0][k], want, out)
		}
	}
	for _, k := range []string{"number", "status"} {
		if got[0][k] == nil || got[0][k] == "" {
			t.Errorf("einvoices list --json lacks %s:\n%s", k, out)
		}
	}
	// The README's `attachment save <number>`: the UBL document as sent.
	dir := t.TempDir()
	if out, err = run(t, "attachment", "save", fmt.Sprint(int64(got[0]["number"].(float64))), "--out", dir); err != nil {
		t.Fatalf("attachment save: %v\n%s", err, out)
	}
	if saved, err := os.ReadFile(strings.TrimSpace(strings.Split(out, "\n")[0])); err != nil || !bytes.Equal(saved, invoice) {
		t.Fatalf("attachment save wrote %q (%v): not the invoice as sent", out, err)
	}
	if out, err = run(t, "einvoices", "list", "--env", "inkoop"); err != nil || !strings.Contains(out, "2026-0417") ||
		!strings.Contains(out, "447.70 EUR") {
		t.Fatalf("einvoices list: %v\n%s", err, out)
	}
	if out, err = run(t, "einvoices", "list", "--env", "verkoop", "--json"); err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("einvoices list of an environment that received none: %v\n%s", err, out)
	}

	// Without auto-send the credit note waits for verkoop's e-mail send/receive.
	if out, err = run(t, "environments", "set", "verkoop", "--auto-send=false"); err != nil || !strings.Contains(out, "auto-send false") {
		t.Fatalf("set --auto-send=false: %v\n%s", err, out)
	}
	creditNote, err := os.ReadFile(filepath.Join("..", "domain", "testdata", "einvoice", "example-creditnote.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err = run(t, "queue", "--env", "verkoop", "--type", "einvoice", "--file", writeFile(t, "creditnote.xml", creditNote),
		"--to", "inkoop@koerier.test"); err != nil || !strings.Contains(out, "e-invoice 2026-C0012") {
		t.Fatalf("queue the credit note: %v\n%s", err, out)
	}
	if out, err = run(t, "mail", "send-receive", "--env", "verkoop"); err != nil || !strings.Contains(out, "1 due e-invoice(s) told to send") {
		t.Fatalf("mail send-receive --env verkoop: %v\n%s", err, out)
	}
	inInbox("2026-C0012")
	if out, err = run(t, "mail", "send-receive", "--env", "inkoop"); err != nil || !strings.Contains(out, "1 invoice(s) received") {
		t.Fatalf("mail send-receive --env inkoop, second time: %v\n%s", err, out)
	}
	if out, err = run(t, "einvoices", "list", "--env", "inkoop", "--json"); err != nil || json.Unmarshal([]byte(out), &got) != nil || len(got) != 2 ||
		got[1]["invoice_number"] != "2026-C0012" || got[1]["kind"] != "CreditNote" {
		t.Fatalf("einvoices list after the credit note: %v\n%s", err, out)
	}
}
