package wsse

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"koerier/digipoort/devcerts"
	"koerier/digipoort/internal/testfixtures"
)

func TestVerifyStoredRealResponse(t *testing.T) {
	data := testfixtures.Read(t, validFixture)
	cert := bstCertificate(t, data)
	// The case VerifyStored exists for: Digipoort's signing certificate expired in
	// October 2022, the response was signed in March 2021.
	if !time.Now().After(cert.NotAfter) {
		t.Fatalf("the fixture's certificate should have expired by now (NotAfter %s)", cert.NotAfter)
	}
	s, err := VerifyStored(data, []*x509.Certificate{cert})
	if err != nil {
		t.Fatalf("the real Digipoort response does not verify offline: %v", err)
	}
	if s.Signer.Subject.CommonName != "cs-bedrijven.procesinfrastructuur.nl" {
		t.Errorf("signer %q", s.Signer.Subject.CommonName)
	}
	if !s.Created.Equal(time.Date(2021, 3, 7, 11, 37, 39, 708e6, time.UTC)) || !s.Expires.Equal(time.Date(2021, 3, 7, 11, 47, 39, 708e6, time.UTC)) {
		t.Errorf("timestamp %s / %s", s.Created, s.Expires)
	}
	if s.Message.Addressing != fixtureAddressing {
		t.Errorf("addressing %+v", s.Message.Addressing)
	}
	x, err := s.Message.PayloadXML()
	if err != nil || !strings.Contains(string(x), "<kenmerk>700627b6-383e-4d8d-809f-b066845b36e0</kenmerk>") {
		t.Errorf("payload %s (%v)", x, err)
	}

	// The same response online is refused today: its timestamp is four years old.
	if _, err := verifyBytes(data, VerifyOptions{Trust: TrustCertificates([]*x509.Certificate{cert}), Tolerance: time.Hour}); !errors.Is(err, ErrTimestamp) {
		t.Errorf("online verification of a 2021 response: %v", err)
	}
}

func TestVerifyStoredRefuses(t *testing.T) {
	valid := testfixtures.Read(t, validFixture)
	cert := bstCertificate(t, valid)
	pinned := []*x509.Certificate{cert}
	relatesTo := elementString(t, string(valid), "wsa:RelatesTo")
	wrapped := strings.Replace(string(valid), relatesTo, "", 1)
	wrapped = strings.Replace(wrapped, "</s:Security>", relatesTo+"</s:Security>", 1)

	for _, c := range []struct {
		name    string
		data    []byte
		trusted []*x509.Certificate
		want    error
	}{
		{"tampered (one byte)", testfixtures.Read(t, tamperedFixture), pinned, ErrSignature},
		{"signer not trusted", valid, []*x509.Certificate{testCreds(t, 0).Certificate}, ErrUntrusted},
		{"nothing trusted", valid, nil, ErrUntrusted},
		{"RelatesTo moved into the Security header", []byte(wrapped), pinned, ErrSignature},
		{"a fault", testfixtures.Read(t, "fixtures/fault-deliver-response.xml"), pinned, ErrUnsigned},
		{"not XML", []byte("<soapenv:Envelope"), pinned, ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := VerifyStored(c.data, c.trusted)
			t.Log(err)
			if !errors.Is(err, c.want) || s != nil {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

var (
	pastPKIOnce sync.Once
	pastCA      *devcerts.Issued
	pastSigner  *devcerts.Issued
	lateCA      *devcerts.Issued // valid only from two years ago
	lateSigner  *devcerts.Issued // issued by lateCA, valid from three years ago
	pastErr     error
)

// pastPKI: a CA valid from five years ago for ten years, and a signing certificate it
// issued that was valid from three years ago until one year ago; lateCA and lateSigner
// are a CA that became valid two years ago and a certificate it issued that claims to
// be valid from three years ago.
func pastPKI(t *testing.T) (ca, signer *devcerts.Issued) {
	t.Helper()
	pastPKIOnce.Do(func() {
		now := time.Now()
		pastCA, pastErr = devcerts.SelfSigned(&x509.Certificate{
			Subject:   pkix.Name{CommonName: "wsse test CA"},
			NotBefore: now.AddDate(-5, 0, 0), NotAfter: now.AddDate(5, 0, 0),
			IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		})
		if pastErr != nil {
			return
		}
		tmpl := devcerts.SigningTemplate()
		tmpl.NotBefore, tmpl.NotAfter = now.AddDate(-3, 0, 0), now.AddDate(-1, 0, 0)
		if pastSigner, pastErr = pastCA.Issue(tmpl); pastErr != nil {
			return
		}
		lateCA, pastErr = devcerts.SelfSigned(&x509.Certificate{
			Subject:   pkix.Name{CommonName: "wsse test late CA"},
			NotBefore: now.AddDate(-2, 0, 0), NotAfter: now.AddDate(5, 0, 0),
			IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		})
		if pastErr != nil {
			return
		}
		tmpl = devcerts.SigningTemplate()
		tmpl.NotBefore, tmpl.NotAfter = now.AddDate(-3, 0, 0), now.AddDate(1, 0, 0)
		lateSigner, pastErr = lateCA.Issue(tmpl)
	})
	if pastErr != nil {
		t.Fatal(pastErr)
	}
	return pastCA, pastSigner
}

// TestVerifyStoredSigningTime: a certificate counts when it is trusted itself and was
// valid at the signed Created time, whatever the time is now.
func TestVerifyStoredSigningTime(t *testing.T) {
	ca, signer := pastPKI(t)
	creds := Credentials{Certificate: signer.Cert, Key: signer.Key}
	now := time.Now()
	during := signedResponse(t, creds, now.AddDate(-2, 0, 0)) // signed while the certificate was valid
	after := signedResponse(t, creds, now.AddDate(0, -6, 0))  // signed after it expired
	before := signedResponse(t, creds, now.AddDate(-4, 0, 0)) // signed before it was issued
	other := signedResponse(t, testCreds(t, 0), now)
	lateEarly := signedResponse(t, Credentials{Certificate: lateSigner.Cert, Key: lateSigner.Key}, now.AddDate(0, -30, 0))
	lateNow := signedResponse(t, Credentials{Certificate: lateSigner.Cert, Key: lateSigner.Key}, now)

	for _, c := range []struct {
		name    string
		data    []byte
		trusted []*x509.Certificate
		want    error
	}{
		{"pinned, valid at signing time, expired now", during, []*x509.Certificate{signer.Cert}, nil},
		// A CA vouches for nothing in a proof: it issues to many organisations, the
		// filer perhaps among them.
		{"only via the CA, valid at signing time", during, []*x509.Certificate{ca.Cert}, ErrUntrusted},
		{"pinned, signed after it expired", after, []*x509.Certificate{signer.Cert}, ErrUntrusted},
		{"via the CA, signed after it expired", after, []*x509.Certificate{ca.Cert}, ErrUntrusted},
		{"pinned, signed before it was valid", before, []*x509.Certificate{signer.Cert}, ErrUntrusted},
		{"via the CA, signed before it was valid", before, []*x509.Certificate{ca.Cert}, ErrUntrusted},
		{"via a CA that was not valid yet at signing time", lateEarly, []*x509.Certificate{lateCA.Cert}, ErrUntrusted},
		{"only via that CA once it was valid", lateNow, []*x509.Certificate{lateCA.Cert}, ErrUntrusted},
		{"pinned beside its CA", lateNow, []*x509.Certificate{lateCA.Cert, lateSigner.Cert}, nil},
		{"another CA's certificate", other, []*x509.Certificate{ca.Cert}, ErrUntrusted},
		{"a non-CA trusted certificate does not vouch for others", during, []*x509.Certificate{testCreds(t, 0).Certificate}, ErrUntrusted},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := VerifyStored(c.data, c.trusted)
			t.Log(err)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				bySigner := s.Signer.Equal(signer.Cert) || s.Signer.Equal(lateSigner.Cert)
				if !bySigner || s.Message.Addressing.RelatesTo != "urn:uuid:request" || s.Expires.Sub(s.Created) != 10*time.Minute {
					t.Errorf("stored %+v", s)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// The client's trust (TrustCertificatesAt) holds a pinned certificate to its validity
// at the signed Created time: an answer signed by an expired certificate would never
// hold as proof, so Koerier must not act on it either.
func TestTrustCertificatesAtHoldsPinnedToItsValidity(t *testing.T) {
	_, signer := pastPKI(t)
	trust := TrustCertificatesAt([]*x509.Certificate{signer.Cert})
	now := time.Now()
	if err := trust(signer.Cert, now.AddDate(-2, 0, 0)); err != nil {
		t.Errorf("valid at signing time: %v", err)
	}
	if err := trust(signer.Cert, now); err == nil || !strings.Contains(err.Error(), "was not valid at") {
		t.Errorf("expired at signing time: %v", err)
	}
	if err := TrustCertificates([]*x509.Certificate{signer.Cert})(signer.Cert); err != nil {
		t.Errorf("TrustCertificates (tests on captured responses) still pins without a time: %v", err)
	}
}
