package activities_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"koerier/activities"
	"koerier/digipoort"
	"koerier/pipeline"
)

func testCertificate(t *testing.T, name string, serial int64, notAfter time.Time) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: notAfter.AddDate(-1, 0, 0), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// The daily check writes one F line per certificate and threshold: a second run on the
// same day (or a retried activity) adds nothing, a threshold passed later adds one.
func TestCheckCertificatesWarnsOncePerThreshold(t *testing.T) {
	h := newHarness(t)
	start := time.Now()
	client, key := testCertificate(t, "koerier-client", 0x2a, start.Add(20*24*time.Hour))
	signing, _ := testCertificate(t, "digipoort-signing", 0x2b, start.Add(100*24*time.Hour))
	cfg := digipoort.Config{ClientCertificate: tls.Certificate{Certificate: [][]byte{client.Raw}, PrivateKey: key, Leaf: client},
		SigningCertificates: []*x509.Certificate{signing}}
	now := start
	h.acts.Config.Certificates = func() digipoort.CertificateReport { return cfg.Certificates(now) }
	lines := func() int {
		return h.count(`SELECT count(*) FROM communication_log WHERE step = 'certificates' AND level = 'F' AND message_number IS NULL`)
	}

	for range 2 {
		res, err := run[pipeline.CertificateCheckResult](h, h.acts.CheckCertificates)
		if err != nil {
			t.Fatal(err)
		}
		if res.ClientDaysLeft == nil || *res.ClientDaysLeft != 19 && *res.ClientDaysLeft != 20 {
			t.Errorf("client days left %v", res.ClientDaysLeft)
		}
		if res.SigningDaysLeft == nil || *res.SigningDaysLeft < 99 {
			t.Errorf("signing days left %v", res.SigningDaysLeft)
		}
		if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "koerier-client") || len(res.Certificates) != 2 {
			t.Errorf("result %+v", res)
		}
	}
	if n := lines(); n != 1 {
		t.Fatalf("%d F lines after two checks at 20 days, want 1", n)
	}

	now = start.Add(15 * 24 * time.Hour) // 5 days left: the 7-day warning
	res, err := run[pipeline.CertificateCheckResult](h, h.acts.CheckCertificates)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "in 5 days") && !strings.Contains(res.Warnings[0], "in 4 days") {
		t.Errorf("warnings %v", res.Warnings)
	}
	if n := lines(); n != 2 {
		t.Errorf("%d F lines after the 7-day threshold, want 2", n)
	}
}

func TestCheckCertificatesWithoutAClientIsFinal(t *testing.T) {
	h := newHarness(t)
	h.acts.Config = activities.Config{}
	_, err := run[pipeline.CertificateCheckResult](h, h.acts.CheckCertificates)
	requireFinal(t, err, pipeline.ErrTypeInvalid, "no Digipoort client configured")
}

// Once the renewed certificate is valid the client uses it by itself; the check says so
// once, with what to do if Digipoort does not know it yet.
func TestCheckCertificatesTellsOfTheSwitchToTheRenewedCertificate(t *testing.T) {
	h := newHarness(t)
	now := time.Now()
	old, oldKey := testCertificate(t, "koerier-client", 0x30, now.Add(20*24*time.Hour))
	renewed, renewedKey := testCertificate(t, "koerier-client", 0x31, now.Add(300*24*time.Hour)) // valid since 65 days
	signing, _ := testCertificate(t, "digipoort-signing", 0x32, now.Add(400*24*time.Hour))
	cfg := digipoort.Config{ClientCertificate: tls.Certificate{Certificate: [][]byte{old.Raw}, PrivateKey: oldKey, Leaf: old},
		NextClientCertificate: tls.Certificate{Certificate: [][]byte{renewed.Raw}, PrivateKey: renewedKey, Leaf: renewed},
		SigningCertificates:   []*x509.Certificate{signing}}
	h.acts.Config.Certificates = func() digipoort.CertificateReport { return cfg.Certificates(now) }
	for range 2 {
		if _, err := run[pipeline.CertificateCheckResult](h, h.acts.CheckCertificates); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.count(`SELECT count(*) FROM communication_log WHERE step = 'certificates' AND level = 'F' AND description LIKE '%now uses the renewed%'`); n != 1 {
		t.Errorf("%d lines about the switch, want 1", n)
	}
}
