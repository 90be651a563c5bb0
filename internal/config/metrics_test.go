package config_test

import (
	"strings"
	"testing"

	"koerier/internal/config"
)

// KOERIER_METRICS_ADDR: the default serves on this machine only, "off" serves none,
// and an address that cannot be listened on is refused with the variable's name.
func TestMetricsAddr(t *testing.T) {
	for _, tc := range []struct {
		set, want, wantErr string
	}{
		{"", config.DefaultMetricsAddr, ""},
		{"0.0.0.0:9464", "0.0.0.0:9464", ""},
		{":9100", ":9100", ""},
		{"off", "", ""},
		{"OFF", "", ""},
		{"9464", "", "KOERIER_METRICS_ADDR=\"9464\": want host:port"},
		{"localhost:", "", "KOERIER_METRICS_ADDR=\"localhost:\""},
	} {
		c, err := config.FromLookup(func(k string) (string, bool) {
			if k == "KOERIER_METRICS_ADDR" {
				return tc.set, true
			}
			return "", false
		})
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want one with %q", tc.set, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || c.MetricsAddr != tc.want):
			t.Errorf("%q: %q, %v; want %q", tc.set, c.MetricsAddr, err, tc.want)
		}
	}
	if config.DefaultMetricsAddr != "127.0.0.1:9464" {
		t.Errorf("default %s: the README and `make run` say 127.0.0.1:9464", config.DefaultMetricsAddr)
	}
}
