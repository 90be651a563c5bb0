package digipoort_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"koerier/digipoort"
	"koerier/digipoort/devcerts"
	"koerier/digipoort/internal/wire"
	"koerier/digipoort/simulator"
	"koerier/digipoort/wsse"
)

// sharedPKI is the development PKI generated once for every test of this
// directory (see SharedPKIDir in client_internal_test.go).
func sharedPKI(t *testing.T) string { return digipoort.SharedPKIDir(t) }

const step = 5 * time.Millisecond

func startSim(t *testing.T, opts simulator.Options) *simulator.Sim {
	t.Helper()
	opts.Dir = sharedPKI(t)
	if opts.StepInterval == 0 {
		opts.StepInterval = step
	}
	ctx, cancel := context.WithCancel(context.Background())
	sim, err := simulator.Start(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); sim.Close() })
	return sim
}

func newClient(t *testing.T, cfg digipoort.Config) *digipoort.Client {
	t.Helper()
	if cfg.HTTPTimeout == 0 {
		cfg.HTTPTimeout = 10 * time.Second
	}
	c, err := digipoort.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func simClient(t *testing.T, sim *simulator.Sim) *digipoort.Client {
	t.Helper()
	cfg, err := sim.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, cfg)
}

var belanghebbende = digipoort.Identity{Nummer: "001000044B37", Type: "Fi"}

func request(aanleverkenmerk string) digipoort.DeliverRequest {
	return digipoort.DeliverRequest{
		Berichtsoort: "Omzetbelasting", Aanleverkenmerk: aanleverkenmerk, Belanghebbende: belanghebbende,
		Rol: "Bedrijf", MimeType: "text/xml", Bestandsnaam: "Omzetbelasting.xbrl",
		Inhoud: []byte(`<xbrli:xbrl xmlns:xbrli="http://www.xbrl.org/2003/instance"/>`),
	}
}

func codes(ss []digipoort.Status) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Code
	}
	return out
}

// waitStatuses polls getStatussenProces until the last status is one of final.
func waitStatuses(t *testing.T, c *digipoort.Client, kenmerk string, final ...string) ([]digipoort.Status, error) {
	t.Helper()
	return waitFor(t, c, kenmerk, func(last digipoort.Status) bool { return slices.Contains(final, last.Code) })
}

// waitFor polls getStatussenProces until done(last status) holds.
func waitFor(t *testing.T, c *digipoort.Client, kenmerk string, done func(digipoort.Status) bool) ([]digipoort.Status, error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ss, err := c.Statuses(context.Background(), kenmerk, time.Time{}, time.Time{})
		if len(ss) > 0 && done(ss[len(ss)-1]) {
			return ss, err
		}
		if err != nil && !isTransient(err) {
			return ss, err
		}
		if time.Now().After(deadline) {
			t.Fatalf("flow of %s did not end; have %v (err %v)", kenmerk, codes(ss), err)
		}
		time.Sleep(step)
	}
}

func wantError(t *testing.T, err error, kind digipoort.Kind, foutcode string) *digipoort.Error {
	t.Helper()
	var e *digipoort.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a *digipoort.Error (%s %s), got %T %v", kind, foutcode, err, err)
	}
	if e.Kind != kind || (foutcode != "" && e.Foutcode != foutcode) {
		t.Fatalf("want %s %s, got %s %q: %v", kind, foutcode, e.Kind, e.Foutcode, err)
	}
	if digipoort.IsFinal(err) != (kind == digipoort.Final) {
		t.Fatalf("IsFinal disagrees with Kind: %v", err)
	}
	return e
}

func isTransient(err error) bool {
	var e *digipoort.Error
	return errors.As(err, &e) && e.Kind == digipoort.Transient
}

func TestHappyFlow(t *testing.T) {
	sim := startSim(t, simulator.Options{})
	c := simClient(t, sim)
	ctx := context.Background()
	req := request("2026000123")
	if xbrl, err := os.ReadFile(filepath.Join("..", "..", "shared", "digipoort", "fixtures", "omzetbelasting-2021.xbrl")); err == nil {
		req.Inhoud = xbrl // the real VAT return when the reference material is here
	}
	before := time.Now()
	resp, err := c.Deliver(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Kenmerk == "" || resp.Aanleverkenmerk != "2026000123" || resp.Berichtsoort != "Omzetbelasting" ||
		resp.Belanghebbende != belanghebbende || resp.Aangeleverd.Before(before.Add(-time.Second)) {
		t.Fatalf("response %+v", resp)
	}
	// Like the real one, the answer names the receiver the request did not name.
	if resp.Ontvanger == nil || *resp.Ontvanger != (digipoort.Identity{Nummer: simulator.BelastingdienstOIN, Type: "OIN"}) ||
		resp.AutorisatieAdres != "http://geenausp.nl" {
		t.Errorf("receiver %+v, autorisatieAdres %q", resp.Ontvanger, resp.AutorisatieAdres)
	}
	ss, err := waitStatuses(t, c, resp.Kenmerk, "500")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(codes(ss), " "); got != "105 100 110 200 301 301 405 400 500" {
		t.Fatalf("happy flow %s", got)
	}
	// The 500 carries the Belastingdienst's acknowledgement, referring to this process.
	ack := ss[len(ss)-1].Details
	for _, want := range []string{`<Responsemessage version="2006.1">`, "<RefersToMessageId>" + resp.Kenmerk + "</RefersToMessageId>",
		"<ResponseType>acknowledgement</ResponseType>", "<Class>A</Class>", "<Description>Status: Verwerkbaar</Description>"} {
		if !strings.Contains(ack, want) {
			t.Errorf("500 statusdetails lack %s:\n%s", want, ack)
		}
	}
	for i, s := range ss {
		if s.Kenmerk != resp.Kenmerk || s.Description == "" || s.Belanghebbende != belanghebbende ||
			(i > 0 && s.Time.Before(ss[i-1].Time)) {
			t.Errorf("status %d: %+v", i, s)
		}
	}
	// getNieuweStatussenProces: everything once, then nothing.
	n1, err := c.NewStatuses(ctx, resp.Kenmerk)
	if err != nil || len(n1) != 9 {
		t.Fatalf("new statuses %v %v", codes(n1), err)
	}
	if n2, err := c.NewStatuses(ctx, resp.Kenmerk); err != nil || len(n2) != 0 {
		t.Fatalf("new statuses a second time %v %v", codes(n2), err)
	}
	// The reply for pickup, with the process kenmerk and aanleverkenmerk.
	berichten, err := c.BerichtenKenmerk(ctx, resp.Kenmerk, time.Time{}, time.Time{})
	if err != nil || len(berichten) != 1 {
		t.Fatalf("pickup %+v %v", berichten, err)
	}
	b := berichten[0]
	if b.Kenmerk != resp.Kenmerk || b.Aanleverkenmerk != "2026000123" || b.Berichtsoort != "Omzetbelasting" ||
		!bytes.Contains(b.Inhoud, []byte(`statuscode="500"`)) || b.Berichtkenmerk == "" {
		t.Fatalf("reply %+v %s", b, b.Inhoud)
	}
	soorten, err := c.Berichtsoorten(ctx, belanghebbende)
	if err != nil || !slices.Contains(soorten, "Omzetbelasting") {
		t.Fatalf("berichtsoorten %v %v", soorten, err)
	}
	processen, err := c.Processen(ctx, "Omzetbelasting", belanghebbende)
	if err != nil || !slices.Equal(processen, []string{resp.Kenmerk}) {
		t.Fatalf("processen %v %v", processen, err)
	}
	if st := sim.Deliveries("2026000123"); st.Accepted != 1 || st.Attempts != 1 || st.Scenario != simulator.Happyflow {
		t.Errorf("stats %+v", st)
	}
}

func TestScenarios(t *testing.T) {
	sim := startSim(t, simulator.Options{OverloadAttempts: 2, OverloadWindow: 80 * time.Millisecond})
	c := simClient(t, sim)
	ctx := context.Background()

	type want struct {
		final      string // last status code
		errorCode  string // its ErrorCode
		details    string // substring of its Details
		contains   []string
		notContain []string
	}
	for _, tc := range []struct {
		aanleverkenmerk string
		want            want
	}{
		{"Afleverfout", want{final: "410", errorCode: "AFS400"}},
		{"foutuitvragendepartij-42", want{final: "510", details: "<ResponseType>error</ResponseType>", contains: []string{"301", "405", "400"},
			notContain: []string{"311"}}},
		{"KoerierValidatieNietGelukt-1", want{final: "311", errorCode: "VAS500", details: "<msg>", notContain: []string{"405", "400"}}},
		{"TECHNISCHPROBLEEMAFLEVEREN", want{final: "500", contains: []string{"420", "400"}}},
		{"MaximaalAantalAfleverpogingen", want{final: "420", errorCode: "AFS600"}},
		{"Happyflow-7", want{final: "500", notContain: []string{"420", "410", "311"}}},
	} {
		t.Run(tc.aanleverkenmerk, func(t *testing.T) {
			resp, err := c.Deliver(ctx, request(tc.aanleverkenmerk))
			if err != nil {
				t.Fatal(err)
			}
			ss, err := waitFor(t, c, resp.Kenmerk, func(last digipoort.Status) bool {
				return last.Code == tc.want.final && last.ErrorCode == tc.want.errorCode
			})
			if err != nil {
				t.Fatal(err)
			}
			last := ss[len(ss)-1]
			if last.ErrorCode != tc.want.errorCode || !strings.Contains(last.Details, tc.want.details) {
				t.Errorf("last status %+v", last)
			}
			cs := codes(ss)
			for _, x := range tc.want.contains {
				if !slices.Contains(cs, x) {
					t.Errorf("%v lacks %s", cs, x)
				}
			}
			for _, x := range tc.want.notContain {
				if slices.Contains(cs, x) {
					t.Errorf("%v has %s", cs, x)
				}
			}
		})
	}

	t.Run("AanleverFault", func(t *testing.T) {
		_, err := c.Deliver(ctx, request("AanleverFault"))
		e := wantError(t, err, digipoort.Final, "ALS100")
		if e.HTTPStatus != 500 || e.Op != "aanleveren" {
			t.Errorf("%+v", e)
		}
		if st := sim.Deliveries("AanleverFault"); st.Accepted != 0 || st.Attempts != 1 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("OverbelastAanleveren", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			_, err := c.Deliver(ctx, request("OverbelastAanleveren-1"))
			wantError(t, err, digipoort.Transient, "ALS400")
		}
		if _, err := c.Deliver(ctx, request("OverbelastAanleveren-1")); err != nil {
			t.Fatalf("third attempt: %v", err)
		}
		if st := sim.Deliveries("OverbelastAanleveren-1"); st.Attempts != 3 || st.Accepted != 1 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("ZwaarbelastAanleveren", func(t *testing.T) {
		start := time.Now()
		_, err := c.Deliver(ctx, request("ZwaarbelastAanleveren"))
		wantError(t, err, digipoort.Transient, "ALS400")
		for {
			_, err = c.Deliver(ctx, request("ZwaarbelastAanleveren"))
			if err == nil {
				break
			}
			wantError(t, err, digipoort.Transient, "ALS400")
			if time.Since(start) > 3*time.Second {
				t.Fatal("still overloaded")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if time.Since(start) < 80*time.Millisecond {
			t.Errorf("accepted after %s, before the 80ms window ended", time.Since(start))
		}
	})

	t.Run("StatusInformatieFault", func(t *testing.T) {
		resp, err := c.Deliver(ctx, request("StatusInformatieFault"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{})
		wantError(t, err, digipoort.Final, "STS100")
		_, err = c.NewStatuses(ctx, resp.Kenmerk)
		wantError(t, err, digipoort.Final, "STS100")
	})

	t.Run("OverbelastStatusInformatie", func(t *testing.T) {
		resp, err := c.Deliver(ctx, request("OverbelastStatusInformatie"))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			_, err := c.Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{})
			wantError(t, err, digipoort.Transient, "STS400")
		}
		if _, err := waitStatuses(t, c, resp.Kenmerk, "500"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ZwaarbelastStatusInformatie", func(t *testing.T) {
		resp, err := c.Deliver(ctx, request("ZwaarbelastStatusInformatie"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{})
		wantError(t, err, digipoort.Transient, "STS400")
		if _, err := waitStatuses(t, c, resp.Kenmerk, "500"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("unknown kenmerk", func(t *testing.T) {
		_, err := c.Statuses(ctx, "00000000-0000-0000-0000-000000000000", time.Time{}, time.Time{})
		wantError(t, err, digipoort.Final, "STS100")
	})
}

// TestScenarioChosenInAdvance: pipeline tests use message numbers as aanleverkenmerk
// and pick the scenario through SetScenario or the control API.
func TestScenarioChosenInAdvance(t *testing.T) {
	sim := startSim(t, simulator.Options{})
	c := simClient(t, sim)
	if err := sim.SetScenario("2026000123", simulator.Afleverfout); err != nil {
		t.Fatal(err)
	}
	body := strings.NewReader(`{"scenario": "foutuitvragendepartij"}`)
	req, _ := http.NewRequest(http.MethodPut, sim.ControlURL()+"/sim/scenarios/2026000124", body)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("control API: %v %v", res, err)
	}
	for ak, final := range map[string]string{"2026000123": "410", "2026000124": "510", "2026000125": "500"} {
		resp, err := c.Deliver(context.Background(), request(ak))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := waitStatuses(t, c, resp.Kenmerk, final); err != nil {
			t.Fatal(err)
		}
	}
	// The control API reports the deliveries.
	res, err = http.Get(sim.ControlURL() + "/sim/deliveries/2026000124")
	if err != nil {
		t.Fatal(err)
	}
	var st simulator.DeliveryStats
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil || st.Accepted != 1 || st.Scenario != simulator.Foutuitvragendepartij {
		t.Errorf("control API stats %+v %v", st, err)
	}
}

func TestClientCertificateFromEnv(t *testing.T) {
	sim := startSim(t, simulator.Options{Instant: true})
	for name, env := range map[string][]string{"PEM": sim.Env(), "PFX": sim.EnvPFX()} {
		t.Run(name, func(t *testing.T) {
			m := map[string]string{}
			for _, l := range env {
				k, v, _ := strings.Cut(l, "=")
				m[k] = v
			}
			cfg, err := digipoort.ConfigFromLookup(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			c := newClient(t, cfg)
			resp, err := c.Deliver(context.Background(), request("cert-"+name))
			if err != nil {
				t.Fatal(err)
			}
			ss, err := c.Statuses(context.Background(), resp.Kenmerk, time.Time{}, time.Time{})
			if err != nil || !slices.Contains(codes(ss), "200") || codes(ss)[len(ss)-1] != "500" {
				t.Fatalf("statuses %v %v", codes(ss), err)
			}
		})
	}
}

func TestUnknownClientCertificateEndsIn210(t *testing.T) {
	sim := startSim(t, simulator.Options{})
	ca, err := devcerts.LoadIssued(sim.Paths().CA, sim.Paths().CAKey)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := ca.Issue(devcerts.ClientTemplate("a certificate Digipoort does not know"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sim.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientCertificate = stranger.TLS()
	c := newClient(t, cfg)
	ctx := context.Background()
	resp, err := c.Deliver(ctx, request("2026000999"))
	if err != nil {
		t.Fatalf("Digipoort accepts the delivery and reports 210 later: %v", err)
	}
	ss, err := waitStatuses(t, c, resp.Kenmerk, "210")
	if got := strings.Join(codes(ss), " "); got != "105 100 110 210" {
		t.Fatalf("statuses %s", got)
	}
	e := wantError(t, err, digipoort.Final, "")
	if e.Statuscode != "210" || !strings.Contains(e.Msg, "client certificate") || !strings.Contains(e.Msg, "KOERIER_DIGIPOORT_CLIENT_CERT") {
		t.Errorf("210 error must tell to check the certificate: %v", err)
	}
	// Nothing to pick up for an unknown certificate; the known client cannot read
	// the stranger's statuses.
	if l, err := c.BerichtenLijst(ctx, time.Time{}, time.Time{}); err != nil || len(l) != 0 {
		t.Errorf("pickup for unknown certificate %v %v", l, err)
	}
	_, err = simClient(t, sim).Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{})
	wantError(t, err, digipoort.Final, "STS100")
	if st := sim.Deliveries("2026000999"); st.Accepted != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestSelfSignedClientCertificateFailsTheHandshake: like Digipoort, which takes only
// PKIoverheid certificates, the simulator's TLS refuses a client certificate that does
// not chain to its client CAs; nothing reaches the services. (A certificate that does
// chain but is not registered gets through and ends in 210: see
// TestUnknownClientCertificateEndsIn210.)
func TestSelfSignedClientCertificateFailsTheHandshake(t *testing.T) {
	sim := startSim(t, simulator.Options{})
	self, err := devcerts.SelfSigned(devcerts.ClientTemplate("a self-signed client"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sim.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	trusted := cfg.ClientCertificate
	cfg.ClientCertificate = self.TLS()
	if _, err := newClient(t, cfg).Deliver(context.Background(), request("2026000998")); err == nil {
		t.Error("delivering with a self-signed certificate succeeded")
	}
	if n := sim.Calls("aanleveren"); n != 0 {
		t.Errorf("the request reached the simulator %d times", n)
	}
	// The handshake itself is refused, with a TLS alert about the certificate.
	handshake := func(cert tls.Certificate) error {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(sim.URL(), "https://"), &tls.Config{
			Certificates: []tls.Certificate{cert}, RootCAs: cfg.ServerCAs, MinVersion: tls.VersionTLS12})
		if err != nil {
			return err
		}
		defer conn.Close()
		// In TLS 1.3 the server's verdict on the client certificate arrives after the
		// client's side of the handshake: read to get it.
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write([]byte("GET /sim HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return err
		}
		_, err = conn.Read(make([]byte, 1))
		return err
	}
	if err := handshake(self.TLS()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("self-signed: %v, want a TLS alert about the certificate", err)
	}
	if err := handshake(trusted); err != nil {
		t.Errorf("the development client certificate: %v", err)
	}
}

// TestEveryScenarioMeetsItsExpectation delivers one message per scenario with the
// client, as a conformance run does, and holds what happens against
// simulator.Expected: the faults of aanleveren and of the status service, the status
// codes in order, the final foutcode and the outcome they mean.
func TestEveryScenarioMeetsItsExpectation(t *testing.T) {
	sim := startSim(t, simulator.Options{OverloadAttempts: 2, OverloadWindow: 50 * time.Millisecond})
	c := simClient(t, sim)
	ctx := context.Background()
	kind := func(transient bool) digipoort.Kind {
		if transient {
			return digipoort.Transient
		}
		return digipoort.Final
	}
	outcomeOf := func(last digipoort.Status) simulator.Outcome {
		switch {
		case last.Code == "500":
			return simulator.OutcomeAccepted
		case last.Code == "311" || last.Code == "510":
			return simulator.OutcomeRejected
		case last.Code == "410" || (last.Code == "420" && last.ErrorCode == "AFS600"):
			return simulator.OutcomeFailed
		}
		return ""
	}
	expectations := simulator.Expectations()
	if len(expectations) != len(simulator.LogiusScenarios())+len(simulator.KoerierScenarios()) {
		t.Fatalf("%d expectations", len(expectations))
	}
	for _, e := range expectations {
		t.Run(string(e.Scenario), func(t *testing.T) {
			ak := string(e.Scenario) + "-1"
			var resp digipoort.DeliverResponse
			faults := 0
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				var err error
				if resp, err = c.Deliver(ctx, request(ak)); err == nil {
					break
				}
				if e.DeliverFault == "" {
					t.Fatal(err)
				}
				wantError(t, err, kind(e.DeliverFaultTransient), e.DeliverFault)
				faults++
				if !e.DeliverFaultTransient {
					if e.Outcome != simulator.OutcomeRefused || e.Codes != nil {
						t.Errorf("a refused delivery expects %s %v", e.Outcome, e.Codes)
					}
					if st := sim.Deliveries(ak); st.Accepted != 0 {
						t.Errorf("the refused delivery started a process: %+v", st)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("still refused: %v", err)
				}
			}
			if (faults > 0) != (e.DeliverFault != "") {
				t.Errorf("%d delivery faults, expected %q", faults, e.DeliverFault)
			}
			if e.StatusFault != "" {
				_, err := c.Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{})
				wantError(t, err, kind(e.StatusFaultTransient), e.StatusFault)
				if !e.StatusFaultTransient {
					// The status service never tells; the process runs its flow regardless.
					time.Sleep(sim.FlowDuration(e.Scenario) + 20*step)
					if p := sim.Deliveries(ak).Processes; len(p) != 1 || !p[0].Ended || p[0].Status != e.Final() {
						t.Errorf("process %+v, want it ended in %s", p, e.Final())
					}
					return
				}
			}
			ss, err := waitFor(t, c, resp.Kenmerk, func(last digipoort.Status) bool {
				return last.Code == e.Final() && last.ErrorCode == e.FinalFoutcode
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(codes(ss), " "); got != strings.Join(e.Codes, " ") {
				t.Errorf("statuses %s, expected %s", got, strings.Join(e.Codes, " "))
			}
			if got := outcomeOf(ss[len(ss)-1]); got != e.Outcome {
				t.Errorf("ends as %q, expected %q", got, e.Outcome)
			}
			// Digipoort's own validation comes before the hand-over to the authority.
			if i, j := slices.Index(codes(ss), "301"), slices.Index(codes(ss), "405"); j >= 0 && (i < 0 || i > j) {
				t.Errorf("405 before Digipoort's validation: %v", codes(ss))
			}
		})
	}
}

func TestWrongServerCA(t *testing.T) {
	sim := startSim(t, simulator.Options{})
	cfg, err := sim.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	other, err := devcerts.SelfSigned(devcerts.ClientTemplate("another CA"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(other.Cert)
	cfg.ServerCAs = pool
	_, err = newClient(t, cfg).Deliver(context.Background(), request("2026000001"))
	e := wantError(t, err, digipoort.Final, "")
	if !strings.Contains(e.Msg, "KOERIER_DIGIPOORT_CA") || e.HTTPStatus != 0 {
		t.Errorf("TLS error should point at the CA setting: %v", err)
	}
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Errorf("cause is not a TLS verification error: %v", err)
	}
	if n := sim.Calls("aanleveren"); n != 0 {
		t.Errorf("the request reached the simulator %d times", n)
	}
}

func TestUntrustedResponseSigner(t *testing.T) {
	sim := startSim(t, simulator.Options{})
	cfg, err := sim.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := devcerts.SelfSigned(devcerts.SigningTemplate())
	if err != nil {
		t.Fatal(err)
	}
	cfg.SigningCertificates = []*x509.Certificate{impostor.Cert}
	_, err = newClient(t, cfg).Deliver(context.Background(), request("2026000002"))
	wantError(t, err, digipoort.Final, "")
	if !errors.Is(err, wsse.ErrUntrusted) || !strings.Contains(err.Error(), "KOERIER_DIGIPOORT_SIGNING_CERT") {
		t.Errorf("want an untrusted-signer error naming the setting: %v", err)
	}
	// Trusting the simulator's CA instead of pinning also works (chain).
	ca, _ := digipoort.LoadCertificates(sim.Paths().CA)
	cfg.SigningCertificates = ca
	if _, err := newClient(t, cfg).Deliver(context.Background(), request("2026000003")); err != nil {
		t.Errorf("signer chaining to a trusted CA: %v", err)
	}
}

func TestTamperedAndUnsignedResponsesOverTheWire(t *testing.T) {
	sim := startSim(t, simulator.Options{})
	c := simClient(t, sim)
	ctx := context.Background()
	sim.SetFaults("aanleveren", simulator.FaultConfig{Tamper: &simulator.Rule{Count: 1}})
	_, err := c.Deliver(ctx, request("2026000010"))
	wantError(t, err, digipoort.Final, "")
	if !errors.Is(err, wsse.ErrSignature) {
		t.Errorf("tampered: %v", err)
	}
	sim.SetFaults("getBerichtenLijst", simulator.FaultConfig{Tamper: &simulator.Rule{Count: 1}})
	_, err = c.BerichtenLijst(ctx, time.Time{}, time.Time{})
	if !errors.Is(err, wsse.ErrSignature) {
		t.Errorf("tampered empty list: %v", err)
	}
	sim.SetFaults(simulator.AllOperations, simulator.FaultConfig{Unsigned: &simulator.Rule{Count: 1}})
	_, err = c.Berichtsoorten(ctx, belanghebbende)
	wantError(t, err, digipoort.Final, "")
	if !errors.Is(err, wsse.ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}
	if _, err := c.Berichtsoorten(ctx, belanghebbende); err != nil {
		t.Errorf("after the injected faults: %v", err)
	}
}

func TestSHA256BothWays(t *testing.T) {
	sim := startSim(t, simulator.Options{Instant: true, ResponseAlgorithm: wsse.RSASHA256})
	cfg, _ := sim.ClientConfig()
	cfg.SignatureAlgorithm = digipoort.SignatureRSASHA256
	c := newClient(t, cfg)
	resp, err := c.Deliver(context.Background(), request("2026000020"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Statuses(context.Background(), resp.Kenmerk, time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
}

func TestIdempotentRedelivery(t *testing.T) {
	sim := startSim(t, simulator.Options{})
	c := simClient(t, sim)
	ctx := context.Background()
	first, err := c.Deliver(ctx, request("2026000030"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Deliver(ctx, request("2026000030"))
	if err != nil {
		t.Fatal(err)
	}
	if second.Kenmerk != first.Kenmerk || !second.Aangeleverd.Equal(first.Aangeleverd) {
		t.Errorf("re-delivery got %s, first %s", second.Kenmerk, first.Kenmerk)
	}
	st := sim.Deliveries("2026000030")
	if st.Attempts != 2 || st.Accepted != 1 || st.Duplicates != 1 || st.Received != 2 || len(st.Kenmerken) != 1 {
		t.Errorf("stats %+v", st)
	}
	// Another berichtsoort with the same aanleverkenmerk is another delivery.
	r := request("2026000030")
	r.Berichtsoort = "ICP"
	third, err := c.Deliver(ctx, r)
	if err != nil || third.Kenmerk == first.Kenmerk {
		t.Fatalf("other berichtsoort: %+v %v", third, err)
	}
	if st := sim.Deliveries("2026000030"); st.Accepted != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestFindDelivery(t *testing.T) {
	sim := startSim(t, simulator.Options{})
	cfg, _ := sim.ClientConfig()
	cfg.HTTPTimeout = 300 * time.Millisecond
	c := newClient(t, cfg)
	ctx := context.Background()

	// The delivery arrives but its answer is lost.
	if err := sim.SetFaults("aanleveren", simulator.FaultConfig{Timeout: &simulator.Rule{Count: 1, Delay: simulator.Duration(5 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Deliver(ctx, request("2026000040"))
	e := wantError(t, err, digipoort.Transient, "")
	if !strings.Contains(e.Msg, "DeliveryCandidates") {
		t.Errorf("a lost delivery answer should point at the look-up: %v", err)
	}
	st := sim.Deliveries("2026000040")
	if st.Accepted != 1 {
		t.Fatalf("the delivery should have arrived: %+v", st)
	}
	var kenmerk string
	var found bool
	for deadline := time.Now().Add(5 * time.Second); !found; time.Sleep(10 * time.Millisecond) {
		kenmerk, found, err = c.FindDelivery(ctx, "Omzetbelasting", belanghebbende, "2026000040", nil)
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("FindDelivery never found the delivery whose answer was lost")
		}
	}
	if kenmerk != st.Kenmerken[0] {
		t.Errorf("found %s, delivered %s", kenmerk, st.Kenmerken[0])
	}
	// Kenmerken that are known are skipped.
	if _, found, err := c.FindDelivery(ctx, "Omzetbelasting", belanghebbende, "2026000040", func(k string) bool { return k == kenmerk }); err != nil || found {
		t.Errorf("known kenmerk not skipped: %v %v", found, err)
	}

	// A delivery that never arrived (HTTP 500 before processing) is not found.
	sim.SetFaults("aanleveren", simulator.FaultConfig{HTTP500: &simulator.Rule{Count: 1}})
	_, err = c.Deliver(ctx, request("2026000041"))
	e = wantError(t, err, digipoort.Transient, "")
	if e.HTTPStatus != 500 {
		t.Errorf("%+v", e)
	}
	time.Sleep(20 * step)
	if k, found, err := c.FindDelivery(ctx, "Omzetbelasting", belanghebbende, "2026000041", nil); err != nil || found {
		t.Errorf("found %q %v for a delivery that never arrived (%v)", k, found, err)
	}
	// Delivering it now works exactly once.
	if _, err := c.Deliver(ctx, request("2026000041")); err != nil {
		t.Fatal(err)
	}
	if st := sim.Deliveries("2026000041"); st.Accepted != 1 || st.Attempts != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestUnknownPickupMessage(t *testing.T) {
	sim := startSim(t, simulator.Options{})
	c := simClient(t, sim)
	ctx := context.Background()
	kenmerk, _, err := sim.AddPickup(simulator.Pickup{Berichtsoort: "Omzetbelasting", Identiteit: belanghebbende,
		Bestandsnaam: "onbekend.xml", Inhoud: []byte("<onbekend/>")})
	if err != nil {
		t.Fatal(err)
	}
	// And one through the control API.
	res, err := http.Post(sim.ControlURL()+"/sim/pickups", "application/json",
		strings.NewReader(`{"kenmerk":"onb-2","berichtsoort":"ICP","identiteit":{"nummer":"001000044B37","type":"Fi"},"inhoud":"PGEvPg=="}`))
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("control API: %v %v", res, err)
	}
	lijst, err := c.BerichtenLijst(ctx, time.Now().AddDate(0, 0, -30), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range lijst {
		got = append(got, r.Kenmerk+"/"+r.Berichtsoort)
	}
	if !slices.Equal(got, []string{kenmerk + "/Omzetbelasting", "onb-2/ICP"}) {
		t.Fatalf("lijst %v", got)
	}
	bs, err := c.BerichtenKenmerk(ctx, kenmerk, time.Time{}, time.Time{})
	if err != nil || len(bs) != 1 || string(bs[0].Inhoud) != "<onbekend/>" || bs[0].Aanleverkenmerk != "" || bs[0].Bestandsnaam != "onbekend.xml" {
		t.Fatalf("%+v %v", bs, err)
	}
	bs, err = c.Berichten(ctx, belanghebbende, "ICP", time.Time{}, time.Time{})
	if err != nil || len(bs) != 1 || string(bs[0].Inhoud) != "<a/>" {
		t.Fatalf("%+v %v", bs, err)
	}
}

func TestTimeWindows(t *testing.T) {
	sim := startSim(t, simulator.Options{StepInterval: 20 * time.Millisecond})
	c := simClient(t, sim)
	ctx := context.Background()
	resp, err := c.Deliver(ctx, request("2026000050"))
	if err != nil {
		t.Fatal(err)
	}
	// Statuses appear over time, not at once.
	early, err := c.Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{})
	if err != nil || len(early) == 0 || len(early) >= 9 {
		t.Fatalf("right after delivery: %v %v", codes(early), err)
	}
	all, err := waitStatuses(t, c, resp.Kenmerk, "500")
	if err != nil {
		t.Fatal(err)
	}
	window, err := c.Statuses(ctx, resp.Kenmerk, all[2].Time, all[4].Time)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(codes(window), " "); got != strings.Join(codes(all[2:5]), " ") {
		t.Errorf("window [%s, %s]: %s, want %v", all[2].Time, all[4].Time, got, codes(all[2:5]))
	}
	from, _ := c.Statuses(ctx, resp.Kenmerk, all[7].Time, time.Time{})
	if got := strings.Join(codes(from), " "); got != "400 500" {
		t.Errorf("from the 8th status: %s", got)
	}

	// Pickup windows: an old message falls outside a 30-day look-back.
	old := time.Now().AddDate(0, 0, -40)
	oldKenmerk, _, _ := sim.AddPickup(simulator.Pickup{Berichtsoort: "ICP", Identiteit: belanghebbende, Tijdstempel: old})
	lookBack, err := c.BerichtenLijst(ctx, time.Now().AddDate(0, 0, -30), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, r := range lookBack {
		ks = append(ks, r.Kenmerk)
	}
	if slices.Contains(ks, oldKenmerk) || !slices.Contains(ks, resp.Kenmerk) {
		t.Errorf("30-day look-back returned %v (old %s, reply %s)", ks, oldKenmerk, resp.Kenmerk)
	}
	if l, _ := c.BerichtenLijst(ctx, old.Add(-time.Hour), old.Add(time.Hour)); len(l) != 1 || l[0].Kenmerk != oldKenmerk {
		t.Errorf("window around the old message: %+v", l)
	}
	if l, _ := c.BerichtenLijst(ctx, time.Now().Add(time.Hour), time.Time{}); len(l) != 0 {
		t.Errorf("window in the future: %+v", l)
	}
}

func TestInjectedTransportFaults(t *testing.T) {
	sim := startSim(t, simulator.Options{Instant: true})
	cfg, _ := sim.ClientConfig()
	cfg.HTTPTimeout = 200 * time.Millisecond
	c := newClient(t, cfg)
	ctx := context.Background()
	resp, err := c.Deliver(ctx, request("2026000060"))
	if err != nil {
		t.Fatal(err)
	}
	sim.SetFaults("getStatussenProces", simulator.FaultConfig{
		HTTP500: &simulator.Rule{Count: 1}, Overload: &simulator.Rule{Count: 2},
	})
	_, err = c.Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{})
	if e := wantError(t, err, digipoort.Transient, ""); e.HTTPStatus != 500 || e.Foutcode != "" {
		t.Errorf("HTTP 500: %+v", e)
	}
	_, err = c.Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{})
	wantError(t, err, digipoort.Transient, "STS400")
	_, err = c.Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{})
	wantError(t, err, digipoort.Transient, "STS400")
	if _, err := c.Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{}); err != nil {
		t.Fatalf("after the injected faults: %v", err)
	}
	// Slow beyond the client timeout.
	sim.SetFaults("getProcessen", simulator.FaultConfig{Slow: &simulator.Rule{Count: 1, Delay: simulator.Duration(time.Second)}})
	_, err = c.Processen(ctx, "Omzetbelasting", belanghebbende)
	wantError(t, err, digipoort.Transient, "")
	// A cancelled context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.Processen(cctx, "Omzetbelasting", belanghebbende)
	wantError(t, err, digipoort.Transient, "")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if f := sim.Faults()["getStatussenProces"]; f.HTTP500.Injected != 1 || f.Overload.Injected != 2 {
		t.Errorf("faults %+v %+v", f.HTTP500, f.Overload)
	}
}

// TestProbabilisticFaultsAreSeeded: the same seed injects the same faults.
func TestProbabilisticFaultsAreSeeded(t *testing.T) {
	pattern := func() string {
		sim := startSim(t, simulator.Options{Instant: true, Seed: 42})
		c := simClient(t, sim)
		sim.SetFaults("getBerichtsoorten", simulator.FaultConfig{Overload: &simulator.Rule{Probability: 0.5, Max: 4}})
		var b strings.Builder
		for i := 0; i < 16; i++ {
			_, err := c.Berichtsoorten(context.Background(), belanghebbende)
			b.WriteString(map[bool]string{true: "x", false: "."}[err != nil])
		}
		return b.String()
	}
	a, b := pattern(), pattern()
	if a != b || strings.Count(a, "x") == 0 || strings.Count(a, "x") > 4 {
		t.Errorf("seeded pattern %s vs %s (want equal, 1..4 faults)", a, b)
	}
}

// TestSimulatorRejectsBadRequestSignature sends a request whose Body was changed after
// signing: the simulator must answer with an ALS100 fault, as Digipoort does.
func TestSimulatorRejectsBadRequestSignature(t *testing.T) {
	sim := startSim(t, simulator.Options{})
	cfg, _ := sim.ClientConfig()
	httpc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{cfg.ClientCertificate}, RootCAs: cfg.ServerCAs}}}
	payload := `<getBerichtsoortenRequest xmlns="http://logius.nl/digipoort/koppelvlakservices/1.2/">` +
		`<identiteitBelanghebbende><nummer>1</nummer><type>Fi</type></identiteitBelanghebbende>` +
		`<autorisatieAdres>http://geenausp.nl</autorisatieAdres></getBerichtsoortenRequest>`
	env := signedRequest(t, cfg, sim.URL()+"/wus/2.0/statusinformatieservice/1.2", "getBerichtsoorten", payload)
	tampered := bytes.Replace(env, []byte("<nummer>1</nummer>"), []byte("<nummer>2</nummer>"), 1)
	for name, body := range map[string][]byte{"intact": env, "tampered": tampered} {
		req, _ := http.NewRequest(http.MethodPost, sim.URL()+"/wus/2.0/statusinformatieservice/1.2", bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.Header.Set("SOAPAction", "http://logius.nl/digipoort/wus/2.0/statusinformatieservice/1.2/StatusinformatieService/getBerichtsoortenRequest")
		res, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(res.Body)
		res.Body.Close()
		m, err := wsse.Parse(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		switch name {
		case "intact":
			if res.StatusCode != 200 || m.Fault != nil {
				t.Errorf("intact request: %d %+v", res.StatusCode, m.Fault)
			}
		case "tampered":
			if res.StatusCode != 500 || m.Fault == nil || m.Fault.Foutcode != "STS100" || !strings.Contains(m.Fault.Foutbeschrijving, "handtekening") {
				t.Errorf("tampered request: %d %+v", res.StatusCode, m.Fault)
			}
			if m.Signed() {
				t.Error("faults are not signed")
			}
		}
	}
}

func signedRequest(t *testing.T, cfg digipoort.Config, to, op, payload string) []byte {
	t.Helper()
	doc := etreeFromString(t, payload)
	env, err := wsse.SignedEnvelope(doc, wsse.Addressing{
		To: to, Action: "http://logius.nl/digipoort/wus/2.0/statusinformatieservice/1.2/StatusinformatieService/" + op + "Request",
		MessageID: "urn:uuid:" + fmt.Sprint(time.Now().UnixNano()), ReplyTo: wsse.AnonymousAddress,
	}, wsse.Credentials{Certificate: cfg.ClientCertificate.Leaf, Key: cfg.ClientCertificate.PrivateKey.(crypto.Signer)}, wsse.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func etreeFromString(t *testing.T, s string) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(s); err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}

// TestMaximumSizeDelivery: content of exactly 20 MiB goes through signing, TLS, the
// simulator's verification and field checks.
func TestMaximumSizeDelivery(t *testing.T) {
	if raceEnabled {
		t.Skip("20 MiB through the race detector takes minutes; the normal test run covers it")
	}
	sim := startSim(t, simulator.Options{Instant: true})
	cfg, err := sim.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPTimeout = time.Minute
	c := newClient(t, cfg)
	r := request("2026000070")
	r.Inhoud = bytes.Repeat([]byte("<rubriek>12345</rubriek>\n"), digipoort.MaxInhoud/25+1)[:digipoort.MaxInhoud]
	if _, err := c.Deliver(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if st := sim.Deliveries("2026000070"); st.Accepted != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestAttachmentsOverTheWire delivers a message with two attachments over mutual TLS.
// What the client put on the wire must meet the strict schema (berichtBijlagen in its
// place, each bijlage complete), and the simulator must have received the document
// and both attachments byte for byte and in order: its Go API and its control API say
// so by name, size and SHA-256.
func TestAttachmentsOverTheWire(t *testing.T) {
	var mu sync.Mutex
	var payloads [][]byte
	sim := startSim(t, simulator.Options{Instant: true, OnRequest: func(op string, payload []byte) {
		if op == wire.OpAanleveren {
			mu.Lock()
			payloads = append(payloads, payload)
			mu.Unlock()
		}
	}})
	c := simClient(t, sim)
	// Every byte value, so that an encoding that is not byte-exact (text instead of
	// base64, a charset conversion) changes the hash.
	binary := make([]byte, 3*256+1)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	req := request("2026000080")
	req.Bijlagen = []digipoort.Bijlage{
		{MimeType: "application/pdf", Bestandsnaam: "toelichting.pdf", Inhoud: binary},
		{MimeType: "text/plain", Bestandsnaam: "notities.txt", Inhoud: []byte("tweede bijlage: één € \r\n")},
	}
	resp, err := c.Deliver(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	got := slices.Clone(payloads)
	mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("%d aanleveren requests reached the simulator, want 1", len(got))
	}
	if err := wire.ValidateRequest(wire.OpAanleveren, got[0]); err != nil {
		t.Fatalf("the request with attachments does not meet the schema: %v\n%s", err, got[0])
	}
	var sent wire.AanleverRequest
	if err := xml.Unmarshal(got[0], &sent); err != nil || sent.BerichtBijlagen == nil || len(sent.BerichtBijlagen.Bijlage) != 2 {
		t.Fatalf("berichtBijlagen on the wire: %+v %v", sent.BerichtBijlagen, err)
	}

	content := func(mime, name string, b []byte) simulator.Content {
		sum := sha256.Sum256(b)
		return simulator.Content{MimeType: mime, Bestandsnaam: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
	}
	wantInhoud := content(req.MimeType, req.Bestandsnaam, req.Inhoud)
	want := []simulator.Content{content("application/pdf", "toelichting.pdf", binary), content("text/plain", "notities.txt", req.Bijlagen[1].Inhoud)}
	check := func(via string, st simulator.DeliveryStats) {
		t.Helper()
		if st.Accepted != 1 || len(st.Processes) != 1 || st.Processes[0].Kenmerk != resp.Kenmerk {
			t.Fatalf("%s: stats %+v", via, st)
		}
		p := st.Processes[0]
		if p.Inhoud != wantInhoud {
			t.Errorf("%s: inhoud %+v, want %+v", via, p.Inhoud, wantInhoud)
		}
		if !slices.Equal(p.Bijlagen, want) {
			t.Errorf("%s: bijlagen %+v, want %+v", via, p.Bijlagen, want)
		}
	}
	check("Go API", sim.Deliveries("2026000080"))

	r, err := http.Get(sim.ControlURL() + "/sim/deliveries/2026000080")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var st simulator.DeliveryStats
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("control API: HTTP %d, %v", r.StatusCode, err)
	}
	check("control API", st)

	// A delivery without attachments records none.
	if _, err := c.Deliver(context.Background(), request("2026000081")); err != nil {
		t.Fatal(err)
	}
	if ps := sim.Deliveries("2026000081").Processes; len(ps) != 1 || len(ps[0].Bijlagen) != 0 || ps[0].Inhoud.Size != int64(len(req.Inhoud)) {
		t.Errorf("delivery without attachments: %+v", ps)
	}
}
