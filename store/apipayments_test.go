package store_test

import (
	"strings"
	"testing"

	"github.com/lib/pq"

	"koerier/domain"
	"koerier/store"
)

// The API reads the transactions of a page's payment orders in one query: only payment
// orders have an entry, each with its transfers in file order.
func TestPaymentTransactionsOfAPage(t *testing.T) {
	f, _ := bankStore(t)
	vat := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	first, err := f.queuePayment(f.examplePayment(""), "")
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.queuePayment(f.examplePayment("EXAMPLE-20261124-0002"), "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.PaymentTransactionsOf(ctx, []int64{vat.Number, first.Number, second.Number, 999999})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("entries for %d messages, want the 2 payment orders: %+v", len(got), got)
	}
	for _, n := range []int64{first.Number, second.Number} {
		txs := got[n]
		if len(txs) != 2 || txs[0].EndToEndID != "INV-2026-0311" || txs[1].EndToEndID != "INV-88-2026-17" || txs[1].Amount != "485.50" {
			t.Errorf("payment order %d: %+v", n, txs)
		}
	}
	if none, err := f.PaymentTransactionsOf(ctx, nil); err != nil || len(none) != 0 {
		t.Errorf("no numbers: %+v %v", none, err)
	}
}

func TestPaymentTransactionsOfUsesAnIndex(t *testing.T) {
	f, _ := bankStore(t)
	plan := f.explainer()(store.PaymentTransactionsOfQuery, pq.Array([]int64{1, 2, 3}))
	if !strings.Contains(plan, "Index") || strings.Contains(plan, "Seq Scan") {
		t.Errorf("PaymentTransactionsOf does not use an index:\n%s", plan)
	}
}
