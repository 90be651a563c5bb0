package config

import (
	"testing"
	"time"
)

func FuzzParseDuration(f *testing.F) {
	for _, seed := range []string{"30d", "15m", "96h", "d", "-1d", "9999999999999d", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && len(s) > 1 && s[len(s)-1] == 'd' && d%(24*time.Hour) != 0 {
			t.Fatalf("%q parsed to %s, not whole days", s, d)
		}
	})
}
