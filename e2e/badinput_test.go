package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/internal/testenv"
)

// strangerCertificate is a client certificate Digipoort (the simulator) does not know.
func strangerCertificate(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "onbekende aanleveraar"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// Rule 10: a client certificate Digipoort does not know ends in 210, and the operator
// is told to check the certificate and whether Digipoort knows it.
func TestUnknownClientCertificateEndsIn210WithAdvice(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{NoWorker: true})
	s.Digipoort.ClientCertificate = strangerCertificate(t)
	s.StartWorker()
	mustCLI(t, "environments", "add", "acme", "--auto-process")
	q := queue(t, "acme", "2023-01")
	until(t, s, q.Number, domain.StatusFailed)
	row := waitEnvStatus(t, "acme", q.Number, "failed")
	if !row.NeedsAction {
		t.Errorf("210 must ask for an operator: %+v", row)
	}
	testenv.Eventually(t, 10*time.Second, "210 reported", func() (bool, string) {
		for _, l := range logLines(t, "--level", "F") {
			text := l.Description + " " + l.Information
			if l.MessageNumber != nil && *l.MessageNumber == q.Number && strings.Contains(text, "210") && strings.Contains(text, "certificate") && strings.Contains(text, "Digipoort knows it") {
				return true, ""
			}
		}
		return false, fmt.Sprint(logLines(t, "--level", "F"))
	})
}
