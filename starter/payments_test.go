package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"koerier/internal/testenv"
)

// examplePayment is the README's example payment order (pain.001.001.09, two
// transfers), its execution date moved three days ahead as the README does, with the
// replacements (old, new, …) applied; it returns the file's path.
func examplePayment(t *testing.T, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "internal", "demo", "example-pain001.xml"))
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(b), "2026-12-01", time.Now().AddDate(0, 0, 3).Format("2006-01-02"), 1)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(doc, replace[i]) {
			t.Fatalf("the example holds no %q: update this test", replace[i])
		}
		doc = strings.ReplaceAll(doc, replace[i], replace[i+1])
	}
	return writeFile(t, "pain001.xml", []byte(doc))
}

// shownPayment is what `starter show --json` says of a payment order.
type shownPayment struct {
	Status       string `json:"status"`
	Subject      string `json:"subject"`
	Period       string `json:"period"`
	Version      int    `json:"version"`
	Transactions []struct {
		EndToEndID string `json:"end_to_end_id"`
		Status     string `json:"status"`
		Reason     string `json:"reason"`
		ReasonText string `json:"reason_text"`
	} `json:"transactions"`
}

func showPayment(t *testing.T, number int64) shownPayment {
	t.Helper()
	out, err := run(t, "show", fmt.Sprint(number), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var p shownPayment
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	return p
}

func queued(t *testing.T, args ...string) int64 {
	t.Helper()
	out, err := run(t, append([]string{"queue", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("queue %v: %v", args, err)
	}
	var q struct {
		Number int64 `json:"number"`
	}
	if err := json.Unmarshal([]byte(out), &q); err != nil || q.Number == 0 {
		t.Fatalf("queue --json: %v\n%s", err, out)
	}
	return q.Number
}

// untilShown runs `starter bank send-receive` until the order's transactions are as
// done says.
func untilShown(t *testing.T, env string, number int64, what string, done func(shownPayment) bool) shownPayment {
	t.Helper()
	var p shownPayment
	testenv.Eventually(t, time.Minute, what, func() (bool, string) {
		out, err := run(t, "bank", "send-receive", "--env", env)
		if err != nil {
			return false, err.Error()
		}
		p = showPayment(t, number)
		return done(p), fmt.Sprintf("%+v after %s", p, out)
	})
	return p
}

// The README's walk-through on a real stack (bank simulator over SFTP, worker,
// Temporal), through the command line only: an environment on the local bank, the
// example queued with subject and period from the file, settled after a few bank
// send/receives, every transaction ACSC in `show --json`; a copy with creditor
// "SIM AC01" has that transaction rejected with its reason, in `show` and `show
// --json`. A reused MsgId prints the store's refusal; a broken file prints the rule.
func TestPaymentOrderThroughTheCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal, a worker and the bank simulator")
	}
	catalogEnv(t)
	testenv.NewStack(t, testenv.StackOptions{Bank: true})
	if out, err := run(t, "environments", "add", "verkoop", "--auto-send", "--local-bank"); err != nil ||
		!strings.Contains(out, "schedule koerier-bank-verkoop created") {
		t.Fatalf("add --local-bank: %v\n%s", err, out)
	}

	example := examplePayment(t)
	out, err := run(t, "queue", "--env", "verkoop", "--type", "payment", "--file", example)
	if err != nil || !strings.Contains(out, "payment order EXAMPLE-20261124-0001") {
		t.Fatalf("queue the example: %v\n%s", err, out)
	}
	var number int64
	if _, err := fmt.Sscanf(out, "queued: message %d,", &number); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := run(t, "queue", "--env", "verkoop", "--type", "payment", "--file", example); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf("MsgId EXAMPLE-20261124-0001 was used by message %d", number)) {
		t.Fatalf("the same MsgId again: %v", err)
	}
	badIBAN := examplePayment(t, "NL39RABO0300065264", "NL39RABO0300065265", "EXAMPLE-20261124-0001", "EXAMPLE-BAD-IBAN")
	if _, err := run(t, "queue", "--env", "verkoop", "--type", "payment", "--file", badIBAN); err == nil ||
		!strings.Contains(err.Error(), "the payment order is not queued") || !strings.Contains(err.Error(), "rule payment.iban:") {
		t.Fatalf("a file with a wrong IBAN: %v", err)
	}
	if _, err := run(t, "queue", "--env", "verkoop", "--type", "payment", "--file", example, "--subject", "EXAMPLE-20261124-0001"); err == nil ||
		!strings.Contains(err.Error(), "give both --subject and --period") {
		t.Fatalf("--subject without --period: %v", err)
	}

	p := untilShown(t, "verkoop", number, "the example settled", func(p shownPayment) bool {
		settled := len(p.Transactions) == 2
		for _, tx := range p.Transactions {
			settled = settled && tx.Status == "ACSC"
		}
		return settled
	})
	if p.Status != "accepted" || p.Subject != "EXAMPLE-20261124-0001" {
		t.Errorf("the settled example: %+v", p)
	}

	rejected := queued(t, "--env", "verkoop", "--type", "payment", "--file",
		examplePayment(t, "Inktservice Oost V.O.F.", "SIM AC01", "EXAMPLE-20261124-0001", "EXAMPLE-20261124-0002"))
	p = untilShown(t, "verkoop", rejected, "the second transaction rejected", func(p shownPayment) bool {
		return len(p.Transactions) == 2 && p.Transactions[1].Status == "RJCT"
	})
	if tx := p.Transactions[1]; tx.EndToEndID != "INV-88-2026-17" || tx.Reason != "AC01" || tx.ReasonText == "" {
		t.Errorf("the rejected transaction: %+v", tx)
	}
	text, err := run(t, "show", fmt.Sprint(rejected))
	listed := false
	for _, line := range strings.Split(text, "\n") {
		listed = listed || strings.Contains(line, "INV-88-2026-17") && strings.Contains(line, "RJCT") && strings.Contains(line, "AC01 account number")
	}
	if err != nil || !strings.Contains(text, "transactions:") || !listed {
		t.Errorf("show lists no rejected transaction with its reason: %v\n%s", err, text)
	}
	if out, err := run(t, "bank", "send-receive", "--env", "verkoop", "--json"); err != nil || !strings.Contains(out, `"reports"`) {
		t.Errorf("bank send-receive --json: %v\n%s", err, out)
	}
}

// Without a bank profile there is no bank send/receive: the refusal says how to give one.
func TestBankSendReceiveWithoutAProfile(t *testing.T) {
	catalogEnv(t)
	useDatabase(t)
	useTemporal(t)
	if _, err := run(t, "environments", "add", "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "bank", "send-receive", "--env", "acme"); err == nil || !strings.Contains(err.Error(), "environments set acme --local-bank") {
		t.Fatalf("bank send-receive without a profile: %v", err)
	}
}
