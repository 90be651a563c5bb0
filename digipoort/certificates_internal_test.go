package digipoort

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"koerier/digipoort/devcerts"
	"koerier/digipoort/internal/testfixtures"
	"koerier/digipoort/internal/wire"
	"koerier/digipoort/wsse"
)

// issueClient issues a client certificate from the development CA, valid from
// notBefore to notAfter (the TLS test server checks validity on the real clock).
func issueClient(t testing.TB, cn string, notBefore, notAfter time.Time) *devcerts.Issued {
	t.Helper()
	p := testPaths(t)
	ca, err := devcerts.LoadIssued(p.CA, p.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := devcerts.ClientTemplate(cn)
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
	c, err := ca.Issue(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func deliverOnce(c *Client) error {
	_, err := c.Deliver(context.Background(), DeliverRequest{Berichtsoort: "Omzetbelasting", Belanghebbende: Identity{Nummer: "1", Type: "Fi"},
		Rol: "Bedrijf", MimeType: "text/xml", Bestandsnaam: "a.xbrl", Inhoud: []byte("<x/>")})
	return err
}

// TestClientCertificateSwitchOver: with two client certificates, each call uses the
// valid one that expires last, for the TLS handshake and the signature alike; never an
// expired or not yet valid one.
func TestClientCertificateSwitchOver(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	day := 24 * time.Hour
	current := issueClient(t, "current", now.Add(-300*day), now.Add(20*day))
	next := issueClient(t, "renewed", now.Add(-day), now.Add(400*day))
	f := startFake(t)
	cfg := fakeConfig(t, f)
	cfg.ClientCertificate, cfg.NextClientCertificate = current.TLS(), next.TLS()
	var mu sync.Mutex
	clock := now
	cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	cfg.InsecureSkipTimestampCheckForTests = true // the client's clock moves; the server's does not
	log, hook := logtest.NewNullLogger()
	cfg.Logger = log
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, step := range []struct {
		at   time.Time
		want *devcerts.Issued // nil: no valid certificate
	}{
		{now.Add(-2 * day), current}, // the renewed one is not valid yet
		{now, next},                  // both valid: the one that expires last
		{now.Add(10 * day), next},
		{now.Add(30 * day), next},  // the old one has expired
		{now.Add(500 * day), nil},  // both expired
		{now.Add(-400 * day), nil}, // neither valid yet
	} {
		mu.Lock()
		clock = step.at
		mu.Unlock()
		before := len(f.requests())
		err := deliverOnce(c)
		reqs := f.requests()
		if step.want == nil {
			if !IsFinal(err) || !strings.Contains(err.Error(), "no valid client certificate") || !strings.Contains(err.Error(), EnvClientCertNext) ||
				MayHaveArrived(err) {
				t.Errorf("at %s: %v", step.at, err)
			}
			if len(reqs) != before {
				t.Errorf("at %s: a request was sent without a valid certificate", step.at)
			}
			continue
		}
		if err != nil {
			t.Fatalf("at %s: %v", step.at, err)
		}
		r := reqs[len(reqs)-1]
		if !sameCertificate(r.TLSClient, step.want.Cert) || !sameCertificate(r.Signer, step.want.Cert) {
			t.Errorf("at %s: TLS with %s, signed with %s; want %s for both", step.at, r.TLSClient.Subject.CommonName,
				r.Signer.Subject.CommonName, step.want.Cert.Subject.CommonName)
		}
	}
	var lines []string
	for _, e := range hook.AllEntries() {
		if strings.Contains(e.Message, "client certificate") {
			lines = append(lines, e.Message+" "+e.Data["subject"].(string))
		}
	}
	want := []string{"digipoort client certificate in use current", "digipoort client certificate switched renewed"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("log lines %q, want %q", lines, want)
	}
}

func TestChooseClientCertificate(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	mk := func(nb, na time.Duration) namedCert {
		return namedCert{cert: tls.Certificate{Leaf: &x509.Certificate{NotBefore: now.Add(nb), NotAfter: now.Add(na),
			Subject: pkix.Name{CommonName: "c"}}}, role: RoleClient}
	}
	for _, tc := range []struct {
		name  string
		certs []namedCert
		want  int
	}{
		{"one valid", []namedCert{mk(-day, day)}, 0},
		{"later expiry wins", []namedCert{mk(-day, day), mk(-day, 2*day)}, 1},
		{"later expiry wins, either slot", []namedCert{mk(-day, 3*day), mk(-day, 2*day)}, 0},
		{"not yet valid is skipped", []namedCert{mk(-day, day), mk(day, 9*day)}, 0},
		{"expired is skipped", []namedCert{mk(-9*day, -day), mk(-day, day)}, 1},
		{"none valid", []namedCert{mk(-9*day, -day), mk(day, 9*day)}, -1},
	} {
		got, err := chooseClientCertificate(tc.certs, now)
		if got != tc.want || (got < 0) != (err != nil) {
			t.Errorf("%s: %d %v, want %d", tc.name, got, err, tc.want)
		}
	}
}

// TestNextClientCertificateFromEnv: the second certificate comes from the _NEXT
// variables, as PEM or PFX; mistakes name the variable.
func TestNextClientCertificateFromEnv(t *testing.T) {
	p := testPaths(t)
	next := issueClient(t, "renewed", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	dir := t.TempDir()
	cf, kf, pfx := filepath.Join(dir, "next.pem"), filepath.Join(dir, "next-key.pem"), filepath.Join(dir, "next.pfx")
	if err := next.Write(cf, kf); err != nil {
		t.Fatal(err)
	}
	if err := next.WritePFX(pfx, "s3cret"); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{EnvURL: "https://x.example", EnvClientCert: p.ClientCert, EnvClientKey: p.ClientKey, EnvCA: p.CA, EnvSigningCert: p.SigningCert}
	env := func(m map[string]string) func(string) (string, bool) {
		all := map[string]string{}
		for k, v := range base {
			all[k] = v
		}
		for k, v := range m {
			all[k] = v
		}
		return lookup(all)
	}
	for _, m := range []map[string]string{
		{EnvClientCertNext: cf, EnvClientKeyNext: kf},
		{EnvClientPFXNext: pfx, EnvClientPFXPasswordNext: "s3cret"},
	} {
		cfg, err := ConfigFromLookup(env(m))
		if err != nil {
			t.Fatal(err)
		}
		if !sameCertificate(cfg.NextClientCertificate.Leaf, next.Cert) || cfg.ClientCertificate.Leaf == nil {
			t.Errorf("%v: next certificate not loaded", m)
		}
		if _, err := New(cfg); err != nil {
			t.Error(err)
		}
	}
	for _, tc := range []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{EnvClientCertNext: cf}, EnvClientKeyNext},
		{map[string]string{EnvClientPFXNext: pfx, EnvClientPFXPasswordNext: "wrong"}, EnvClientPFXNext},
		{map[string]string{EnvClientCertNext: p.ClientCert, EnvClientKeyNext: p.ClientKey}, "the same certificate"},
		{map[string]string{EnvClientCert: "", EnvClientKey: "", EnvClientCertNext: cf, EnvClientKeyNext: kf}, "no client certificate"},
	} {
		if _, err := ConfigFromLookup(env(tc.set)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v (want %q)", tc.set, err, tc.want)
		}
	}
}

// TestCertificateReport: warnings at 60, 30 and 7 days before expiry and after it,
// none for a certificate with a successor; a pure function of now.
func TestCertificateReport(t *testing.T) {
	now := time.Now().Truncate(time.Hour)
	day := 24 * time.Hour
	expiry := now.Add(100 * day)
	client := issueClient(t, "client", now.Add(-300*day), expiry)
	cfg := Config{ClientCertificate: client.TLS(), sources: certSources{client: EnvClientCert + "=/etc/koerier/client.pem"}}
	for _, tc := range []struct {
		left      time.Duration
		threshold int // -1: no warning
		urgent    bool
	}{
		{61 * day, -1, false}, {60*day + time.Hour, -1, false}, {60 * day, 60, false}, {31 * day, 60, false}, {30 * day, 30, false},
		{8 * day, 30, false}, {7 * day, 7, true}, {time.Hour, 7, true}, {-time.Hour, 0, true},
	} {
		at := expiry.Add(-tc.left)
		r := cfg.Certificates(at)
		if len(r.Certificates) != 1 {
			t.Fatalf("%v: %+v", tc.left, r.Certificates)
		}
		ci := r.Certificates[0]
		if ci.Role != RoleClient || ci.Serial != client.Cert.SerialNumber.Text(16) || ci.Source != EnvClientCert+"=/etc/koerier/client.pem" ||
			!ci.NotAfter.Equal(expiry) || ci.Subject != client.Cert.Subject.String() {
			t.Errorf("%v: %+v", tc.left, ci)
		}
		if wantDays := int((tc.left + day - 1) / day); tc.left > 0 && ci.DaysLeft != int(tc.left/day) {
			t.Errorf("%v: days left %d (ceil would be %d)", tc.left, ci.DaysLeft, wantDays)
		}
		if tc.threshold < 0 {
			if len(r.Warnings) != 0 {
				t.Errorf("%v left: unexpected warnings %+v", tc.left, r.Warnings)
			}
			continue
		}
		if tc.threshold == 0 {
			// Expired: the certificate warning, and the one that no client certificate is valid.
			if len(r.Warnings) != 2 || r.Warnings[0].ThresholdDays != 0 || !r.Warnings[1].Urgent ||
				!strings.Contains(r.Warnings[1].Message, "no valid client certificate") || r.ClientDaysLeft != nil || ci.InUse {
				t.Errorf("expired: %+v", r)
			}
			continue
		}
		if len(r.Warnings) != 1 {
			t.Fatalf("%v left: warnings %+v", tc.left, r.Warnings)
		}
		w := r.Warnings[0]
		if w.ThresholdDays != tc.threshold || w.Urgent != tc.urgent || w.Serial != ci.Serial || !strings.Contains(w.Message, EnvClientCertNext) ||
			!ci.InUse || r.ClientDaysLeft == nil || *r.ClientDaysLeft != ci.DaysLeft || r.Urgent() != tc.urgent {
			t.Errorf("%v left: %+v %+v", tc.left, w, r)
		}
	}

	// A renewed certificate takes over: no warning for the old one, a note instead.
	next := issueClient(t, "client", now.Add(-day), expiry.Add(365*day))
	cfg.NextClientCertificate = next.TLS()
	r := cfg.Certificates(expiry.Add(-10 * day))
	if len(r.Warnings) != 0 || len(r.Certificates) != 2 || r.Certificates[0].InUse || !r.Certificates[1].InUse ||
		!strings.Contains(r.Certificates[0].Note, next.Cert.SerialNumber.Text(16)) || r.Certificates[1].Role != RoleClientNext {
		t.Errorf("with a successor: %+v", r)
	}
	if in, ok := r.InUseClient(); !ok || in.Serial != next.Cert.SerialNumber.Text(16) {
		t.Errorf("in use: %+v", in)
	}

	// Signing certificates: a warning naming the setting, unless one of the same name
	// outlives it.
	sign := issueClient(t, "cs-bedrijven.procesinfrastructuur.nl", now.Add(-day), now.Add(20*day))
	cfg.SigningCertificates = []*x509.Certificate{sign.Cert}
	r = cfg.Certificates(now)
	var sw []CertificateWarning
	for _, w := range r.Warnings {
		if w.Role == RoleSigning {
			sw = append(sw, w)
		}
	}
	if len(sw) != 1 || sw[0].ThresholdDays != 30 || !strings.Contains(sw[0].Message, EnvSigningCert) {
		t.Errorf("signing warning: %+v", r.Warnings)
	}
	renewed := issueClient(t, "cs-bedrijven.procesinfrastructuur.nl", now.Add(-day), now.Add(700*day))
	cfg.SigningCertificates = append(cfg.SigningCertificates, renewed.Cert)
	for _, w := range cfg.Certificates(now).Warnings {
		if w.Role == RoleSigning {
			t.Errorf("signing certificate with a successor still warns: %+v", w)
		}
	}

	// The JSON form, as the command and the worker show it.
	b, err := json.Marshal(cfg.Certificates(now))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"certificates"`, `"warnings"`, `"days_left"`, `"in_use"`, `"not_after"`, `"serial"`, `"client_days_left"`} {
		if !bytes.Contains(b, []byte(k)) {
			t.Errorf("JSON lacks %s: %s", k, b)
		}
	}
}

// TestCertificatesAsDER: the signing certificate and the CA bundle may come as DER
// (one certificate, or several concatenated) as well as PEM.
func TestCertificatesAsDER(t *testing.T) {
	p := testPaths(t)
	dir := t.TempDir()
	signing, _ := LoadCertificates(p.SigningCert)
	ca, _ := LoadCertificates(p.CA)
	other, err := devcerts.SelfSigned(devcerts.SigningTemplate())
	if err != nil {
		t.Fatal(err)
	}
	signDER, caDER, junk := filepath.Join(dir, "signing.cer"), filepath.Join(dir, "ca.der"), filepath.Join(dir, "junk.cer")
	os.WriteFile(signDER, signing[0].Raw, 0o644)
	os.WriteFile(caDER, append(append([]byte{}, ca[0].Raw...), other.Cert.Raw...), 0o644)
	os.WriteFile(junk, []byte("not a certificate"), 0o644)
	cfg, err := ConfigFromLookup(lookup(map[string]string{EnvURL: "https://x.example", EnvClientCert: p.ClientCert, EnvClientKey: p.ClientKey,
		EnvCA: caDER, EnvSigningCert: signDER}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.SigningCertificates) != 1 || !sameCertificate(cfg.SigningCertificates[0], signing[0]) || len(cfg.ServerCACertificates) != 2 ||
		!sameCertificate(cfg.ServerCACertificates[0], ca[0]) {
		t.Errorf("DER not read: %d signing, %d CA", len(cfg.SigningCertificates), len(cfg.ServerCACertificates))
	}
	_, err = ConfigFromLookup(lookup(map[string]string{EnvURL: "https://x.example", EnvClientCert: p.ClientCert, EnvClientKey: p.ClientKey,
		EnvCA: junk, EnvSigningCert: junk}))
	if err == nil || !strings.Contains(err.Error(), EnvSigningCert+"="+junk+": neither PEM nor DER") || !strings.Contains(err.Error(), EnvCA) {
		t.Errorf("junk: %v", err)
	}
	// PEM still works, with text around the blocks as some exports have.
	pemFile := filepath.Join(dir, "signing.pem")
	os.WriteFile(pemFile, append([]byte("subject=CN=x\n"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: signing[0].Raw})...), 0o644)
	if certs, err := LoadCertificates(pemFile); err != nil || len(certs) != 1 {
		t.Errorf("PEM: %v", err)
	}
}

// TestCABundleWithoutIntermediate: a bundle with only the root, against a server that
// sends only its own certificate, fails with a message naming the missing
// intermediate; with the intermediate in the bundle the call goes through.
func TestCABundleWithoutIntermediate(t *testing.T) {
	rootTmpl := devcerts.ClientTemplate("Test Staat der Nederlanden Root CA")
	rootTmpl.IsCA, rootTmpl.BasicConstraintsValid = true, true
	rootTmpl.KeyUsage, rootTmpl.ExtKeyUsage = x509.KeyUsageCertSign|x509.KeyUsageCRLSign, nil
	root, err := devcerts.SelfSigned(rootTmpl)
	if err != nil {
		t.Fatal(err)
	}
	interTmpl := devcerts.ClientTemplate("Test PKIoverheid Server CA 2020")
	interTmpl.IsCA, interTmpl.BasicConstraintsValid, interTmpl.MaxPathLenZero = true, true, true
	interTmpl.KeyUsage, interTmpl.ExtKeyUsage = x509.KeyUsageCertSign|x509.KeyUsageCRLSign, nil
	inter, err := root.Issue(interTmpl)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := inter.Issue(devcerts.ServerTemplate())
	if err != nil {
		t.Fatal(err)
	}
	f := startFake(t, func(c *tls.Config) { c.Certificates = []tls.Certificate{leaf.TLS()} })
	p := testPaths(t)
	dir := t.TempDir()
	rootOnly := filepath.Join(dir, "root.pem")
	os.WriteFile(rootOnly, root.CertPEM(), 0o644)
	cfg, err := ConfigFromLookup(lookup(map[string]string{EnvURL: f.URL(), EnvClientCert: p.ClientCert, EnvClientKey: p.ClientKey,
		EnvCA: rootOnly, EnvSigningCert: p.SigningCert}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = deliverOnce(c)
	var e *Error
	if !errors.As(err, &e) || e.Kind != Final || e.HTTPStatus != 0 {
		t.Fatalf("root-only bundle: %v", err)
	}
	for _, want := range []string{"Test PKIoverheid Server CA 2020", "intermediate", EnvCA, "Test Staat der Nederlanden Root CA"} {
		if !strings.Contains(e.Msg, want) {
			t.Errorf("message lacks %q: %s", want, e.Msg)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d requests got through", n)
	}

	// Built in code without the list of bundle certificates: still names the issuer.
	cfg.ServerCACertificates = nil
	c2, _ := New(cfg)
	defer c2.Close()
	if err := deliverOnce(c2); err == nil || !strings.Contains(err.Error(), "Test PKIoverheid Server CA 2020") {
		t.Errorf("without the bundle list: %v", err)
	}

	// With the intermediate: through.
	cfg.ServerCACertificates = []*x509.Certificate{root.Cert, inter.Cert}
	cfg.ServerCAs = nil
	c3, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := deliverOnce(c3); err != nil {
		t.Fatalf("with the intermediate: %v", err)
	}
}

// TestTimestampToleranceFromEnv: the environment cannot switch the timestamp check
// off (or make it zero, negative or hours wide); only a Config built in code for
// tests on captured responses can.
func TestTimestampToleranceFromEnv(t *testing.T) {
	p := testPaths(t)
	env := func(v string) func(string) (string, bool) {
		return lookup(map[string]string{EnvURL: "https://x.example", EnvClientCert: p.ClientCert, EnvClientKey: p.ClientKey, EnvCA: p.CA,
			EnvSigningCert: p.SigningCert, EnvTimestampTolerance: v})
	}
	for _, v := range []string{"off", "OFF", "disabled", "-1s", "-5m", "0", "0s"} {
		_, err := ConfigFromLookup(env(v))
		if err == nil || !strings.Contains(err.Error(), "cannot be switched off") || !strings.Contains(err.Error(), EnvTimestampTolerance) {
			t.Errorf("%q: %v", v, err)
		}
	}
	if _, err := ConfigFromLookup(env("2h")); err == nil || !strings.Contains(err.Error(), "at most 1h") {
		t.Errorf("2h: %v", err)
	}
	cfg, err := ConfigFromLookup(env("30s"))
	if err != nil || cfg.TimestampTolerance != 30*time.Second || cfg.InsecureSkipTimestampCheckForTests {
		t.Fatalf("30s: %v %v", cfg.TimestampTolerance, err)
	}
	c, err := New(cfg)
	if err != nil || c.tol != 30*time.Second {
		t.Fatalf("New: %v", err)
	}
	cfg.TimestampTolerance = -1
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "InsecureSkipTimestampCheckForTests") {
		t.Errorf("negative tolerance in code: %v", err)
	}
	cfg.TimestampTolerance = 0
	cfg.InsecureSkipTimestampCheckForTests = true
	if c, err := New(cfg); err != nil || c.tol >= 0 {
		t.Errorf("test option: %v", err)
	}
}

// TestSkipTimestampCheckOnCapturedResponse: the test option is what lets the 2021
// response verify.
func TestSkipTimestampCheckOnCapturedResponse(t *testing.T) {
	data := testfixtures.Read(t, "fixtures/valid-deliver-response.xml")
	signer := fixtureClient(t, 0).trust
	cfg := testConfig(t)
	for _, skip := range []bool{false, true} {
		cfg.InsecureSkipTimestampCheckForTests = skip
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.trust = signer
		var out wire.AanleverResponse
		err = c.decodeResponse(wire.OpAanleveren, 200, data, fixtureMessageID, &out, nil)
		if skip && err != nil {
			t.Errorf("with the test option: %v", err)
		}
		if !skip && !errors.Is(err, wsse.ErrTimestamp) {
			t.Errorf("without it: %v", err)
		}
	}
}

// Digipoort's signing certificate is pinned: a CA in KOERIER_DIGIPOORT_SIGNING_CERT is
// refused, because it would trust every certificate it issues (the filer's too).
func TestSigningCertificateMustNotBeACA(t *testing.T) {
	p := testPaths(t)
	caFile := filepath.Join(t.TempDir(), "ca-as-signing.pem")
	if err := os.WriteFile(caFile, mustReadFile(t, p.CA), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ConfigFromLookup(lookup(map[string]string{EnvURL: "https://x.example", EnvClientCert: p.ClientCert, EnvClientKey: p.ClientKey,
		EnvCA: p.CA, EnvSigningCert: caFile}))
	if err == nil || !strings.Contains(err.Error(), "not a CA") || !strings.Contains(err.Error(), EnvSigningCert) {
		t.Fatalf("a CA as signing certificate: %v", err)
	}
	if _, err := ConfigFromLookup(lookup(map[string]string{EnvURL: "https://x.example", EnvClientCert: p.ClientCert, EnvClientKey: p.ClientKey,
		EnvCA: p.CA, EnvSigningCert: p.SigningCert})); err != nil {
		t.Fatalf("the signing certificate itself: %v", err)
	}
}

func mustReadFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
