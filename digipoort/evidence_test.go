package digipoort_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"koerier/digipoort"
	"koerier/digipoort/devcerts"
	"koerier/digipoort/internal/testfixtures"
	"koerier/digipoort/simulator"
	"koerier/digipoort/wsse"
)

// tokenCertificate is the certificate in a response's BinarySecurityToken: what a test
// trusts to read a real captured response whose signer it has no other copy of.
func tokenCertificate(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	s := string(data)
	i := strings.Index(s, "X509v3\"")
	if i < 0 {
		t.Fatal("no X509v3 BinarySecurityToken in the response")
	}
	s = s[i:]
	b64 := s[strings.IndexByte(s, '>')+1 : strings.Index(s, "</")]
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(b64), ""))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// The real aanleverResponse Logius' conformance environment signed in 2021 is evidence
// of a delivery: kenmerk, aanleverkenmerk and the time Digipoort received it, signed
// by a certificate that was valid then (it expired in 2022).
func TestReadEvidenceOfARealDeliverResponse(t *testing.T) {
	data := testfixtures.Read(t, "fixtures/valid-deliver-response.xml")
	signer := tokenCertificate(t, data)
	ev, err := digipoort.ReadEvidence(data, []*x509.Certificate{signer})
	if err != nil || !ev.Verified || ev.Reason != "" {
		t.Fatalf("valid response: %+v, %v", ev, err)
	}
	want := digipoort.Evidence{
		Verified: true,
		Signer: digipoort.Signer{Subject: signer.Subject.String(), Issuer: signer.Issuer.String(), Serial: signer.SerialNumber.String(),
			NotBefore: signer.NotBefore, NotAfter: signer.NotAfter},
		Created:   time.Date(2021, 3, 7, 11, 37, 39, 708e6, time.UTC),
		Expires:   time.Date(2021, 3, 7, 11, 47, 39, 708e6, time.UTC),
		Action:    "http://logius.nl/digipoort/wus/2.0/aanleverservice/1.2/AanleverService/aanleverenResponse",
		MessageID: "urn:uuid:de1dc4f7-98ab-4a03-90a5-e9efd20b1003", RelatesTo: "urn:uuid:de1dc4f7-98ab-4a03-90a5-e9efd20b1003",
		Operation: "aanleveren", Kenmerk: "700627b6-383e-4d8d-809f-b066845b36e0", Aanleverkenmerk: "Happyflow", Berichtsoort: "Omzetbelasting",
		Belanghebbende: digipoort.Identity{Nummer: "001000044B37", Type: "Fi"},
		Aangeleverd:    time.Date(2021, 3, 7, 11, 37, 39, 702e6, time.UTC),
	}
	if !evidenceEqual(ev, want) {
		t.Fatalf("evidence:\n got %+v\nwant %+v", ev, want)
	}
	if !strings.Contains(ev.Signer.Subject, "cs-bedrijven.procesinfrastructuur.nl") || !ev.Signer.NotAfter.Before(time.Now()) {
		t.Fatalf("signer %+v: want Logius' expired signing certificate", ev.Signer)
	}
}

// A response with one byte changed, one signed by a certificate that is not trusted,
// and a fault (never signed) are not evidence, and say why; nothing of their content
// is reported.
func TestReadEvidenceRefusesWhatDoesNotVerify(t *testing.T) {
	valid := testfixtures.Read(t, "fixtures/valid-deliver-response.xml")
	signer := tokenCertificate(t, valid)
	other, err := digipoort.LoadCertificates(devcerts.PathsIn(sharedPKI(t)).SigningCert)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		data    []byte
		trusted []*x509.Certificate
		want    error
	}{
		{"tampered", testfixtures.Read(t, "fixtures/tampered-deliver-response.xml"), []*x509.Certificate{signer}, wsse.ErrSignature},
		{"untrusted signer", valid, other, wsse.ErrUntrusted},
		{"nobody trusted", valid, nil, wsse.ErrUntrusted},
		{"fault", testfixtures.Read(t, "fixtures/fault-deliver-response.xml"), []*x509.Certificate{signer}, wsse.ErrUnsigned},
		{"not XML", []byte("not a response"), []*x509.Certificate{signer}, wsse.ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev, err := digipoort.ReadEvidence(c.data, c.trusted)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if ev.Verified || ev.Reason == "" || ev.Kenmerk != "" || ev.Operation != "" || ev.Statuses != nil {
				t.Fatalf("evidence of a response that does not verify: %+v", ev)
			}
		})
	}
}

// Against the simulator over mutual TLS: the bytes the client hands to the recorder are
// exactly what verifies offline, and ReadEvidence reads from them what the client read
// from the live answers (the delivery, and every status of a failed delivery with its
// foutcode).
func TestRecordedResponsesAreEvidence(t *testing.T) {
	sim := startSim(t, simulator.Options{})
	c := simClient(t, sim)
	trusted, err := digipoort.LoadCertificates(sim.Paths().SigningCert)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var recorded []digipoort.SignedResponse
	ctx := digipoort.WithResponseRecorder(context.Background(), func(r digipoort.SignedResponse) {
		mu.Lock()
		defer mu.Unlock()
		recorded = append(recorded, r)
	})
	last := func() digipoort.SignedResponse {
		mu.Lock()
		defer mu.Unlock()
		if len(recorded) == 0 {
			t.Fatal("nothing recorded")
		}
		return recorded[len(recorded)-1]
	}

	resp, err := c.Deliver(ctx, request("Afleverfout-evidence"))
	if err != nil {
		t.Fatal(err)
	}
	r := last()
	ev, err := digipoort.ReadEvidence(r.Body, trusted)
	if err != nil || !ev.Verified || r.Op != "aanleveren" || ev.Operation != "aanleveren" {
		t.Fatalf("deliver response: op %s, %+v, %v", r.Op, ev, err)
	}
	if ev.Kenmerk != resp.Kenmerk || ev.Aanleverkenmerk != "Afleverfout-evidence" || !ev.Aangeleverd.Equal(resp.Aangeleverd) ||
		ev.RelatesTo != r.RequestMessageID {
		t.Fatalf("deliver evidence %+v does not say what the client read (%+v, request %s)", ev, resp, r.RequestMessageID)
	}

	var statuses []digipoort.Status
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(step) {
		statuses, err = c.Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(statuses); n > 0 && slices.Contains([]string{"410", "500", "510", "311"}, statuses[n-1].Code) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flow did not end: %v", codes(statuses))
		}
	}
	r = last()
	ev, err = digipoort.ReadEvidence(r.Body, trusted)
	if err != nil || !ev.Verified || ev.Operation != "getStatussenProces" || ev.Kenmerk != resp.Kenmerk {
		t.Fatalf("status response: %+v, %v", ev, err)
	}
	if !slices.EqualFunc(ev.Statuses, statuses, statusEqual) {
		t.Fatalf("statuses in the evidence:\n%+v\nthe client read:\n%+v", ev.Statuses, statuses)
	}
	if final := ev.Statuses[len(ev.Statuses)-1]; final.Code != "410" || final.ErrorCode == "" || final.ErrorDescription == "" {
		t.Fatalf("the failure's foutcode is not in the evidence: %+v", final)
	}

	// One byte of the kept response changed: it is evidence no longer.
	tampered := bytes.Replace(r.Body, []byte(resp.Kenmerk), []byte(strings.ToUpper(resp.Kenmerk[:1])+resp.Kenmerk[1:]), 1)
	if bytes.Equal(tampered, r.Body) {
		tampered = bytes.Replace(r.Body, []byte("410"), []byte("500"), 1)
	}
	if _, err := digipoort.ReadEvidence(tampered, trusted); !errors.Is(err, wsse.ErrSignature) {
		t.Fatalf("altered response: %v, want ErrSignature", err)
	}
}

func statusEqual(a, b digipoort.Status) bool {
	return a.Kenmerk == b.Kenmerk && a.Code == b.Code && a.Time.Equal(b.Time) && a.Description == b.Description &&
		a.ErrorCode == b.ErrorCode && a.ErrorDescription == b.ErrorDescription && a.Details == b.Details && a.Belanghebbende == b.Belanghebbende
}

func evidenceEqual(a, b digipoort.Evidence) bool {
	return a.Verified == b.Verified && a.Reason == b.Reason && a.Signer.Subject == b.Signer.Subject && a.Signer.Issuer == b.Signer.Issuer &&
		a.Signer.Serial == b.Signer.Serial && a.Signer.NotBefore.Equal(b.Signer.NotBefore) && a.Signer.NotAfter.Equal(b.Signer.NotAfter) &&
		a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires) && a.Action == b.Action && a.MessageID == b.MessageID &&
		a.RelatesTo == b.RelatesTo && a.Operation == b.Operation && a.Kenmerk == b.Kenmerk && a.Aanleverkenmerk == b.Aanleverkenmerk &&
		a.Berichtsoort == b.Berichtsoort && a.Belanghebbende == b.Belanghebbende && a.Aangeleverd.Equal(b.Aangeleverd) &&
		slices.EqualFunc(a.Statuses, b.Statuses, statusEqual)
}
