package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"koerier/bank/simulator"
	"koerier/domain"
)

// The embedded order is the demo's example, byte for byte: a change to one that misses
// the other would benchmark a file nobody else queues.
func TestBenchPaymentIsTheDemoExample(t *testing.T) {
	demo, err := os.ReadFile(filepath.Join("..", "demo", "example-pain001.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(demo, examplePayment) {
		t.Fatal("internal/bench/example-pain001.xml differs from internal/demo/example-pain001.xml: copy the demo's over it")
	}
}

// Each order passes the store's check as a new order of its own: its MsgId, unique
// blocks and transfers under it, executed on the day given; two orders share no id.
func TestBenchPaymentOrderIsANewValidOrder(t *testing.T) {
	today := time.Date(2027, 3, 10, 0, 0, 0, 0, time.UTC)
	ids := map[string]bool{}
	for _, msgID := range []string{"BENCH0310120000-P0", "BENCH0310120000-P123456"} {
		doc, err := paymentOrder(examplePayment, msgID, "2027-03-17")
		if err != nil {
			t.Fatal(err)
		}
		p, err := domain.CheckPayment(doc, today)
		if err != nil {
			t.Fatalf("%s: %v", msgID, err)
		}
		if p.MsgID != msgID || len(p.Blocks) != 1 || len(p.Blocks[0].Transactions) != 2 {
			t.Fatalf("%s: read as %+v", msgID, p)
		}
		if got := p.Blocks[0].Execution.Format(time.DateOnly); got != "2027-03-17" {
			t.Errorf("%s: executed on %s", msgID, got)
		}
		for _, id := range []string{p.MsgID, p.Blocks[0].PmtInfID, p.Blocks[0].Transactions[0].EndToEndID, p.Blocks[0].Transactions[1].EndToEndID} {
			if ids[id] {
				t.Errorf("id %s used twice", id)
			}
			ids[id] = true
		}
		if strings.Contains(string(doc), "EXAMPLE-") || strings.Contains(string(doc), "INV-") {
			t.Errorf("%s keeps an id of the example:\n%s", msgID, doc)
		}
	}
	// A date in the past is what the store refuses; the rewrite really moves it.
	doc, err := paymentOrder(examplePayment, "BENCH-PAST", "2027-03-09")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := domain.CheckPayment(doc, today); err == nil {
		t.Error("an order executed yesterday passed the check")
	}
	if _, err := paymentOrder([]byte("<Document/>"), "X", "2027-03-17"); err == nil || !strings.Contains(err.Error(), "MsgId") {
		t.Errorf("a template without the elements: %v", err)
	}
}

// The orders spread over the declarations' queueing: the first goes at once, none
// waits for more declarations than are queued, and more orders than declarations
// still all go.
func TestBenchPaymentsSpreadOverTheDeclarations(t *testing.T) {
	for _, c := range []struct{ n, p int }{{20, 10}, {10000, 1000}, {7, 3}, {3, 7}, {1, 1}, {5, 5}} {
		prev := int64(-1)
		for j := 0; j < c.p; j++ {
			at := paymentAt(j, c.n, c.p)
			if at < prev || at < 0 || at >= int64(c.n) {
				t.Fatalf("n %d p %d: order %d after %d declarations (previous %d)", c.n, c.p, j, at, prev)
			}
			prev = at
		}
		if paymentAt(0, c.n, c.p) != 0 {
			t.Errorf("n %d p %d: the first order waits", c.n, c.p)
		}
	}
	if got := []int64{paymentAt(0, 20, 10), paymentAt(1, 20, 10), paymentAt(9, 20, 10)}; got[0] != 0 || got[1] != 2 || got[2] != 18 {
		t.Errorf("20 declarations, 10 orders: %v, want every second declaration", got)
	}
}

// A file counts as a duplicate once however often it came again, and only if it is
// one of the benchmark's.
func TestBenchDuplicateFiles(t *testing.T) {
	files := []simulator.FileRecord{{MsgID: "A", TimesSeen: 1}, {MsgID: "B", TimesSeen: 3}, {MsgID: "B", TimesSeen: 3}, {MsgID: "B", TimesSeen: 3},
		{MsgID: "C", TimesSeen: 2}, {MsgID: "", TimesSeen: 0}}
	if n := duplicateFiles(files, map[string]bool{"A": true, "B": true}); n != 1 {
		t.Errorf("duplicates %d, want 1 (B; C is not ours)", n)
	}
	if n := duplicateFiles(files, map[string]bool{"A": true}); n != 0 {
		t.Errorf("duplicates %d, want 0", n)
	}
}
