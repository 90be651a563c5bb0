package main

import (
	"testing"
	"time"
)

// The command line's own parsers of what an operator types.
func FuzzParseWhen(f *testing.F) {
	for _, seed := range []string{"", "2h", "2026-11-25", "2026-11-25T10:00", "2026-11-25T10:00:00Z", "yesterday", "-5m"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		when, err := parseWhen(s)
		if err == nil && s == "" && !when.IsZero() {
			t.Fatalf("empty input must mean no bound, got %s", when)
		}
		if err == nil && s != "" && when.After(time.Now().Add(100*365*24*time.Hour)) && len(s) < 12 {
			t.Fatalf("%q parsed to a time far in the future: %s", s, when)
		}
	})
}

func FuzzParseNumbers(f *testing.F) {
	f.Add("1000001")
	f.Add("-1")
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {
		ns, err := parseNumbers([]string{s})
		if err == nil && (len(ns) != 1 || ns[0] <= 0) {
			t.Fatalf("parseNumbers(%q) = %v", s, ns)
		}
	})
}
