package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"koerier/digipoort"
	"koerier/digipoort/devcerts"
)

// clearDigipoortEnv empties every KOERIER_DIGIPOORT_* variable, so that a developer's
// own settings do not leak into the test.
func clearDigipoortEnv(t *testing.T) {
	t.Helper()
	for _, k := range digipoort.EnvVariables() {
		t.Setenv(k, "")
	}
}

// TestDigipoortCertificatesCommand: the command lists what is configured (no
// Digipoort, Postgres or Temporal needed) and warns when a certificate nears expiry.
func TestDigipoortCertificatesCommand(t *testing.T) {
	dir := t.TempDir()
	p, _, err := devcerts.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := devcerts.LoadIssued(p.CA, p.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string, notAfter time.Time) (string, string, *devcerts.Issued) {
		tmpl := devcerts.ClientTemplate(name)
		tmpl.NotAfter = notAfter
		c, err := ca.Issue(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		cf, kf := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		if err := c.Write(cf, kf); err != nil {
			t.Fatal(err)
		}
		return cf, kf, c
	}
	soonCert, soonKey, soon := issue("expiring", time.Now().Add(20*24*time.Hour))
	nextCert, nextKey, next := issue("renewed", time.Now().AddDate(1, 0, 0))

	clearDigipoortEnv(t)
	t.Setenv(digipoort.EnvEnvironment, "preproduction")
	t.Setenv(digipoort.EnvClientCert, soonCert)
	t.Setenv(digipoort.EnvClientKey, soonKey)
	t.Setenv(digipoort.EnvCA, p.CA)
	t.Setenv(digipoort.EnvSigningCert, p.SigningCert)

	// One certificate, 20 days left: a warning that says what to do.
	out, stderr, err := runDigipoortCLI(t, "digipoort", "certificates")
	if err != nil || stderr != "" {
		t.Fatalf("%v %s", err, stderr)
	}
	serial := soon.Cert.SerialNumber.Text(16)
	for _, want := range []string{"ROLE", "DAYS LEFT", "client", "yes", serial, "CN=expiring", digipoort.EnvClientCert + "=" + soonCert,
		"response-signing", "warning: client certificate", digipoort.EnvClientCertNext} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// With the renewed certificate configured: it is in use, and the warning is gone.
	t.Setenv(digipoort.EnvClientCertNext, nextCert)
	t.Setenv(digipoort.EnvClientKeyNext, nextKey)
	stdout, _, err := runDigipoortCLI(t, "digipoort", "certificates", "--json")
	if err != nil {
		t.Fatal(err)
	}
	v := decodeOne(t, stdout)
	certs, _ := v["certificates"].([]any)
	if len(certs) != 3 {
		t.Fatalf("certificates: %s", stdout)
	}
	inUse := map[string]bool{}
	for _, c := range certs {
		m := c.(map[string]any)
		for _, k := range []string{"role", "subject", "serial", "not_before", "not_after", "days_left", "in_use", "state"} {
			if _, ok := m[k]; !ok {
				t.Errorf("certificate lacks %q: %v", k, m)
			}
		}
		inUse[m["serial"].(string)] = m["in_use"].(bool)
	}
	if inUse[serial] || !inUse[next.Cert.SerialNumber.Text(16)] {
		t.Errorf("in use: %v", inUse)
	}
	if w, _ := v["warnings"].([]any); len(w) != 0 {
		t.Errorf("warnings with a successor configured: %v", w)
	}
	if d, ok := v["client_days_left"].(float64); !ok || d < 364 {
		t.Errorf("client_days_left %v", v["client_days_left"])
	}

	// A configuration problem is reported as such.
	t.Setenv(digipoort.EnvURL, "https://127.0.0.1:8443")
	if _, _, err := runDigipoortCLI(t, "digipoort", "certificates"); err == nil || !strings.Contains(err.Error(), "conflicting") {
		t.Errorf("conflicting endpoints: %v", err)
	}
}
