package digipoort

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"koerier/digipoort/internal/testfixtures"
)

// TestConformancePresetMatchesWSDLs: the conformance URLs are the soap11:address of
// Logius' WSDLs (when ../shared is here to compare with).
func TestConformancePresetMatchesWSDLs(t *testing.T) {
	e, err := PresetEndpoints("conformance")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"AanleverService_V1_2.wsdl":         e.Aanlever,
		"StatusinformatieService_V1_2.wsdl": e.Statusinformatie,
		"OphaalService_V1_2.wsdl":           e.Ophaal,
	}
	dir := filepath.Join(testfixtures.Dir(t), "spec")
	re := regexp.MustCompile(`<soap11:address\s+location="([^"]+)"`)
	for file, url := range want {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		m := re.FindSubmatch(data)
		if m == nil {
			t.Fatalf("%s has no soap11:address", file)
		}
		if string(m[1]) != url {
			t.Errorf("%s: WSDL address %s, preset %s", file, m[1], url)
		}
	}
}

func TestPresets(t *testing.T) {
	for name, want := range map[string]Endpoints{
		"production": {
			Aanlever:         "https://wus.digipoort.logius.nl/wus/2.0/aanleverservice/1.2",
			Statusinformatie: "https://wus.digipoort.logius.nl/wus/2.0/statusinformatieservice/1.2",
			Ophaal:           "https://wus.digipoort.logius.nl/wus/2.0/ophaalservice/1.2",
		},
		"Preproduction": {
			Aanlever:         "https://wus.preproductie.digipoort.logius.nl/wus/2.0/aanleverservice/1.2",
			Statusinformatie: "https://wus.preproductie.digipoort.logius.nl/wus/2.0/statusinformatieservice/1.2",
			Ophaal:           "https://wus.preproductie.digipoort.logius.nl/wus/2.0/ophaalservice/1.2",
		},
		"conformance": {
			Aanlever:         "https://cs-bedrijven.procesinfrastructuur.nl:443/cpl/aanleverservice/1.2",
			Statusinformatie: "https://cs-bedrijven.procesinfrastructuur.nl:443/cpl/statusinformatieservice/1.2",
			Ophaal:           "https://cs-bedrijven.procesinfrastructuur.nl:443/cpl/ophaalservice/services/OphaalService_V1_2",
		},
	} {
		got, err := PresetEndpoints(name)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v", name, got, err)
		}
		if err := got.check([3]string{"a", "s", "o"}); err != nil {
			t.Errorf("%s: preset fails its own check: %v", name, err)
		}
	}
	if _, err := PresetEndpoints("acceptatie"); err == nil || !strings.Contains(err.Error(), "conformance, preproduction, production") {
		t.Errorf("unknown preset: %v", err)
	}
}

// TestEndpointSettingsFromEnv: exactly one way to set the endpoints wins; two ways at
// once, or an incomplete set of service URLs, is an error that says what to do.
func TestEndpointSettingsFromEnv(t *testing.T) {
	p := testPaths(t)
	base := map[string]string{EnvClientCert: p.ClientCert, EnvClientKey: p.ClientKey, EnvCA: p.CA, EnvSigningCert: p.SigningCert}
	with := func(m map[string]string) func(string) (string, bool) {
		all := map[string]string{}
		for k, v := range base {
			all[k] = v
		}
		for k, v := range m {
			all[k] = v
		}
		return lookup(all)
	}
	conf, _ := PresetEndpoints(EnvironmentConformance)
	svc := map[string]string{EnvAanleverURL: "https://dp.example/a/aanleverservice", EnvStatusinformatieURL: "https://dp.example/s/statusinformatieservice",
		EnvOphaalURL: "https://dp.example/o/ophaalservice/x"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want Endpoints
	}{
		{"preset", map[string]string{EnvEnvironment: "conformance"}, conf},
		{"base URL", map[string]string{EnvURL: "https://127.0.0.1:8443/"},
			Endpoints{"https://127.0.0.1:8443/wus/2.0/aanleverservice/1.2", "https://127.0.0.1:8443/wus/2.0/statusinformatieservice/1.2",
				"https://127.0.0.1:8443/wus/2.0/ophaalservice/1.2"}},
		{"per service", svc, Endpoints{svc[EnvAanleverURL], svc[EnvStatusinformatieURL], svc[EnvOphaalURL]}},
	} {
		cfg, err := ConfigFromLookup(with(tc.env))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := cfg.endpoints(); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
		if _, err := New(cfg); err != nil {
			t.Errorf("%s: New: %v", tc.name, err)
		}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nothing", map[string]string{}, []string{"no Digipoort endpoint", EnvEnvironment, EnvURL, EnvOphaalURL}},
		{"preset and base URL", map[string]string{EnvEnvironment: "production", EnvURL: "https://127.0.0.1:8443"},
			[]string{"conflicting", EnvEnvironment, EnvURL, "exactly one", "unset the others"}},
		{"preset and one service", map[string]string{EnvEnvironment: "production", EnvOphaalURL: "https://x.example/ophaal"},
			[]string{"conflicting", EnvOphaalURL, "exactly one"}},
		{"base URL and services", map[string]string{EnvURL: "https://127.0.0.1:8443", EnvAanleverURL: svc[EnvAanleverURL],
			EnvStatusinformatieURL: svc[EnvStatusinformatieURL], EnvOphaalURL: svc[EnvOphaalURL]}, []string{"conflicting", EnvURL, EnvAanleverURL}},
		{"two of three services", map[string]string{EnvAanleverURL: svc[EnvAanleverURL], EnvStatusinformatieURL: svc[EnvStatusinformatieURL]},
			[]string{EnvOphaalURL + " is not set", "all three"}},
		{"swapped", map[string]string{EnvAanleverURL: svc[EnvOphaalURL], EnvStatusinformatieURL: svc[EnvStatusinformatieURL],
			EnvOphaalURL: svc[EnvAanleverURL]}, []string{"swapped", EnvAanleverURL, EnvOphaalURL}},
		{"unknown preset", map[string]string{EnvEnvironment: "test"}, []string{EnvEnvironment, "conformance, preproduction, production"}},
		{"base URL with a service path", map[string]string{EnvURL: "https://wus.digipoort.logius.nl/wus/2.0/aanleverservice/1.2"},
			[]string{EnvURL, "base URL", EnvEnvironment}},
		{"http", map[string]string{EnvOphaalURL: "http://x/ophaal", EnvAanleverURL: svc[EnvAanleverURL], EnvStatusinformatieURL: svc[EnvStatusinformatieURL]},
			[]string{EnvOphaalURL, "https://"}},
	} {
		_, err := ConfigFromLookup(with(tc.env))
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error lacks %q: %v", tc.name, w, err)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error spans lines: %q", tc.name, err)
		}
	}
	// In code: URL and Endpoints together are refused too.
	cfg := testConfig(t)
	cfg.Endpoints = conf
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "both URL and Endpoints") {
		t.Errorf("URL and Endpoints: %v", err)
	}
}

// TestCallsReachPerServiceEndpoints: over real mutual TLS, each operation goes to its
// service's own URL — including a pickup path shaped unlike the other two, as in
// Logius' conformance environment — and wsa:To names that URL.
func TestCallsReachPerServiceEndpoints(t *testing.T) {
	f := startFake(t)
	cfg := fakeConfig(t, f)
	cfg.URL = ""
	cfg.Endpoints = Endpoints{
		Aanlever:         f.URL() + "/cpl/aanleverservice/1.2",
		Statusinformatie: f.URL() + "/cpl/statusinformatieservice/1.2",
		Ophaal:           f.URL() + "/cpl/ophaalservice/services/OphaalService_V1_2",
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Deliver(ctx, DeliverRequest{Berichtsoort: "Omzetbelasting", Belanghebbende: Identity{Nummer: "001000044B37", Type: "Fi"},
		Rol: "Bedrijf", MimeType: "text/xml", Bestandsnaam: "a.xbrl", Inhoud: []byte("<x/>")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Statuses(ctx, "kenmerk-1", time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if b, err := c.BerichtenKenmerk(ctx, "kenmerk-1", time.Time{}, time.Time{}); err != nil || len(b) != 1 {
		t.Fatalf("pickup: %v %v", b, err)
	}
	want := []string{"/cpl/aanleverservice/1.2", "/cpl/statusinformatieservice/1.2", "/cpl/ophaalservice/services/OphaalService_V1_2"}
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, r := range reqs {
		if r.Path != want[i] || r.Addressing.To != f.URL()+want[i] {
			t.Errorf("request %d (%s): path %s, wsa:To %s; want %s", i, r.Op, r.Path, r.Addressing.To, want[i])
		}
	}
}

// TestRedirectNotFollowed: a redirect is reported, not followed: following a 307 would
// post the signed request to whatever address the answer names.
func TestRedirectNotFollowed(t *testing.T) {
	f := startFake(t)
	elsewhere := startFake(t)
	f.respond = func(w http.ResponseWriter, req seenRequest) {
		w.Header().Set("Location", elsewhere.URL()+req.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
	c, err := New(fakeConfig(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Deliver(context.Background(), DeliverRequest{Berichtsoort: "Omzetbelasting", Belanghebbende: Identity{Nummer: "1", Type: "Fi"},
		Rol: "Bedrijf", MimeType: "text/xml", Bestandsnaam: "a.xbrl", Inhoud: []byte("<x/>")})
	var e *Error
	if !errors.As(err, &e) || e.Kind != Final || e.HTTPStatus != http.StatusTemporaryRedirect ||
		!strings.Contains(e.Msg, "does not follow redirects") || !strings.Contains(e.Msg, elsewhere.URL()) || !strings.Contains(e.Msg, EnvEnvironment) {
		t.Fatalf("redirect: %v", err)
	}
	if n := len(elsewhere.requests()); n != 0 {
		t.Fatalf("the signed request was re-sent to the redirect target %d times", n)
	}
	if !MayHaveArrived(err) {
		t.Errorf("a delivery answered by a redirect is not known to have failed: it must be looked up")
	}
}
