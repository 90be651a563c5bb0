package store

import (
	"strings"
	"testing"
)

// The run line lists at most maxLoggedNumbers numbers and counts the rest; what it
// writes it reads back, so the next page adds to it.
func TestRunTotalsAreBoundedAndReadBack(t *testing.T) {
	var total runTotals
	for page := 0; page < 3; page++ {
		var ns []int64
		for i := 0; i < 300; i++ {
			ns = append(ns, int64(1000000+page*300+i))
		}
		back, err := parseRunTotals(total.String())
		if err != nil {
			t.Fatal(err)
		}
		if page > 0 && (back.Messages != total.Messages || back.Bytes != total.Bytes || len(back.Listed) != len(total.Listed)) {
			t.Fatalf("read back %+v, wrote %+v", back, total)
		}
		total = back.add(runTotals{Messages: len(ns), Attachments: len(ns), Bytes: 7, Pages: 1, Listed: ns[:min(len(ns), maxLoggedNumbers)]})
	}
	s := total.String()
	if total.Messages != 900 || total.Pages != 3 || total.Bytes != 21 || len(total.Listed) != maxLoggedNumbers ||
		!strings.HasPrefix(s, "900 message(s), 900 attachment(s), 21 bytes in 3 page(s); numbers: 1000000, 1000001") ||
		!strings.HasSuffix(s, "and 400 more (the run's result lists up to 10000)") {
		t.Errorf("totals %+v: %q", total, s[:200])
	}
	if _, err := parseRunTotals("numbers: 1, 2"); err == nil {
		t.Error("a line in another format was read")
	}
}
