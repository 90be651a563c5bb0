package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"koerier/digipoort/devcerts"
	"koerier/digipoort/simulator"
	"koerier/domain"
	"koerier/internal/testenv"
)

// strangerCertificate is a client certificate Digipoort (the simulator) does not know:
// issued by the CA it trusts (else the handshake fails, as with the real Digipoort),
// but not registered.
func strangerCertificate(t *testing.T, sim *simulator.Sim) tls.Certificate {
	t.Helper()
	ca, err := devcerts.LoadIssued(sim.Paths().CA, sim.Paths().CAKey)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := ca.Issue(devcerts.ClientTemplate("onbekende aanleveraar"))
	if err != nil {
		t.Fatal(err)
	}
	return stranger.TLS()
}

// Rule 10 (docs/rules.md): a client certificate Digipoort does not know ends in 210, and the operator
// is told to check the certificate and whether Digipoort knows it.
func TestUnknownClientCertificateEndsIn210WithAdvice(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{NoWorker: true})
	s.Digipoort.ClientCertificate = strangerCertificate(t, s.Sim)
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
			if l.MessageNumber != nil && *l.MessageNumber == q.Number && strings.Contains(text, "210") && strings.Contains(text, "certificate") &&
				strings.Contains(text, "Digipoort knows it") {
				return true, ""
			}
		}
		return false, fmt.Sprint(logLines(t, "--level", "F"))
	})
}

// Digipoort answers that cannot be trusted — tampered, truncated, unsigned, signed by
// an untrusted certificate — and statuses Koerier does not expect: each gets an F line
// that says what to do, nothing is stored from them, no declaration is lost or filed
// twice, and the worker keeps running.
func TestBadDigipoortResponses(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{NoWorker: true, Env: map[string]string{"KOERIER_DIGIPOORT_TIMEOUT": "3s"}})
	s.Digipoort.HTTPTimeout = 3 * time.Second
	s.StartWorker()
	mustCLI(t, "environments", "add", "acme", "--auto-process")

	// A tampered answer to a delivery: looked up, not filed twice.
	must(t, s.Sim.SetFaults("aanleveren", simulator.FaultConfig{Tamper: &simulator.Rule{Count: 1}}))
	tampered := queue(t, "acme", "2023-02")
	mustCLI(t, "send", fmt.Sprint(tampered.Number))
	testenv.Eventually(t, 30*time.Second, "tampered delivery recovered", func() (bool, string) {
		m, err := s.Store.Message(context.Background(), tampered.Number)
		return err == nil && m.Kenmerk != nil, ""
	})
	// A truncated and an unsigned answer to status requests: asked again next run.
	must(t, s.Sim.SetFaults("getStatussenProces", simulator.FaultConfig{Truncate: &simulator.Rule{Count: 1}, Unsigned: &simulator.Rule{Count: 1}}))
	truncated := queue(t, "acme", "2023-03")
	// An unknown status code after the flow, and a status naming a stranger's kenmerk.
	odd := queue(t, "acme", "2023-04")
	must(t, s.Sim.InjectStatus(ak(odd.Number), simulator.InjectedStatus{Code: "999", Description: "iets nieuws"}))
	must(t, s.Sim.InjectStatus(ak(odd.Number), simulator.InjectedStatus{Code: "500", ForKenmerk: "kenmerk-van-niemand"}))
	for _, q := range []queued{tampered, truncated, odd} {
		until(t, s, q.Number, domain.StatusAccepted)
	}
	for _, q := range []queued{tampered, truncated, odd} {
		if d := s.Sim.Deliveries(ak(q.Number)); d.Accepted != 1 || d.Duplicates != 0 {
			t.Errorf("message %d filed %d times, %d duplicates", q.Number, d.Accepted, d.Duplicates)
		}
	}
	f := logLines(t, "--level", "F")
	for _, want := range []struct {
		number int64
		text   string
	}{
		{tampered.Number, "could not be trusted"},
		{odd.Number, "code Koerier does not know"},
		{0, "kenmerk-van-niemand"},
		{0, "the next send/receive asks again"},
	} {
		if !hasLine(f, want.number, "F", want.text) {
			t.Errorf("no F line with %q for message %d in %+v", want.text, want.number, f)
		}
	}
	if !hasLine(logLines(t, "--step", "send"), tampered.Number, "I", "found at Digipoort") {
		t.Error("the tampered delivery was not recovered by looking it up")
	}
	m, _ := s.Store.Message(context.Background(), odd.Number)
	if !m.NeedsAction {
		t.Error("an unknown status code must ask for an operator")
	}
	var msgs []map[string]any
	cliJSON(t, &msgs, "messages")
	onb := 0
	for _, m := range msgs {
		if m["subtype"] == "ONB" && m["pickup_kenmerk"] == "kenmerk-van-niemand" {
			onb++
		}
	}
	if onb != 1 {
		t.Errorf("the stranger's status must become one ONB, got %d", onb)
	}
}

// A worker that does not trust Digipoort's signing certificate (renewed, say) files
// nothing twice: it says what to do, keeps the message, and once the certificate is
// fixed finds the delivery that did arrive.
func TestUntrustedSigningCertificate(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{NoWorker: true})
	good := s.Digipoort.SigningCertificates
	stranger := strangerCertificate(t, s.Sim)
	s.Digipoort.SigningCertificates = []*x509.Certificate{stranger.Leaf}
	w := s.StartWorker()
	mustCLI(t, "environments", "add", "acme", "--auto-process")
	q := queue(t, "acme", "2023-05")
	mustCLI(t, "send", fmt.Sprint(q.Number))
	testenv.Eventually(t, 30*time.Second, "untrusted answer logged", func() (bool, string) {
		return hasLine(logLines(t, "--level", "F"), q.Number, "F", "KOERIER_DIGIPOORT_SIGNING_CERT"), ""
	})
	w.Stop()
	s.Digipoort.SigningCertificates = good
	s.StartWorker()
	until(t, s, q.Number, domain.StatusAccepted)
	if d := s.Sim.Deliveries(ak(q.Number)); d.Accepted != 1 || d.Duplicates != 0 {
		t.Fatalf("filed %d times (%d duplicates)", d.Accepted, d.Duplicates)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
