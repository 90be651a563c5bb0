package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"koerier/digipoort"
	"koerier/digipoort/devcerts"
	"koerier/digipoort/internal/testfixtures"
	"koerier/digipoort/internal/wire"
)

func start(t *testing.T, dir string, opts Options) *Sim {
	t.Helper()
	opts.Dir = dir
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Close() })
	return s
}

func TestScenarioFor(t *testing.T) {
	for ak, want := range map[string]Scenario{
		"Happyflow": Happyflow, "2026000123": Happyflow, "": Happyflow,
		"AanleverFault": AanleverFault, "aanleverfault-3": AanleverFault,
		"Foutuitvragendepartij-42": Foutuitvragendepartij, "FOUTUITVRAGENDEPARTIJ": Foutuitvragendepartij,
		"koerierValidatieNietGelukt7": KoerierValidatieNietGelukt, "Afkeuruitvragendepartij": Happyflow,
		"OverbelastStatusInformatie": OverbelastStatusInformatie, "OverbelastAanleveren-x": OverbelastAanleveren,
		"ZwaarbelastStatusInformatie": ZwaarbelastStatusInformatie, "StatusInformatieFault": StatusInformatieFault,
		"xHappyflow": Happyflow, "Afleverfout": Afleverfout,
	} {
		if got := ScenarioFor(ak); got != want {
			t.Errorf("%q: %s, want %s", ak, got, want)
		}
	}
	if _, err := ParseScenario("nope"); err == nil || !strings.Contains(err.Error(), "Happyflow") {
		t.Errorf("unknown scenario: %v", err)
	}
}

func TestStepsOfUnknownClient(t *testing.T) {
	for _, sc := range Scenarios() {
		st := steps(sc, false)
		if st[len(st)-1].Code != "210" {
			t.Errorf("%s for an unknown certificate ends in %s", sc, st[len(st)-1].Code)
		}
	}
}

// TestCertificatesCreatedOnceAndReused: the first start creates the PKI, the second
// reuses it (same CA), and a missing leaf is re-issued by the existing CA.
func TestCertificatesCreatedOnceAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sim")
	s1 := start(t, dir, Options{})
	ca1, _ := os.ReadFile(s1.Paths().CA)
	client1, _ := os.ReadFile(s1.Paths().ClientCert)
	s1.Close()
	if err := os.Remove(s1.Paths().SigningCert); err != nil {
		t.Fatal(err)
	}
	s2 := start(t, dir, Options{})
	ca2, _ := os.ReadFile(s2.Paths().CA)
	client2, _ := os.ReadFile(s2.Paths().ClientCert)
	if !bytes.Equal(ca1, ca2) || !bytes.Equal(client1, client2) {
		t.Error("second start did not reuse the development certificates")
	}
	signing, err := devcerts.LoadIssued(s2.Paths().SigningCert, s2.Paths().SigningKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := devcerts.LoadIssued(s2.Paths().CA, s2.Paths().CAKey)
	if err := signing.Cert.CheckSignatureFrom(ca.Cert); err != nil {
		t.Errorf("re-issued signing certificate not from the existing CA: %v", err)
	}
	for _, f := range []string{s2.Paths().ClientKey, s2.Paths().CAKey, s2.Paths().ClientPFX} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	env := strings.Join(s2.Env(), "\n")
	for _, want := range []string{"KOERIER_DIGIPOORT_URL=" + s2.URL(), "KOERIER_DIGIPOORT_CLIENT_CERT=" + s2.Paths().ClientCert,
		"KOERIER_DIGIPOORT_CLIENT_KEY=", "KOERIER_DIGIPOORT_CA=", "KOERIER_DIGIPOORT_SIGNING_CERT="} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
	if !strings.HasPrefix(s2.URL(), "https://127.0.0.1:") || !strings.HasPrefix(s2.ControlURL(), "http://127.0.0.1:") {
		t.Errorf("not on loopback: %s %s", s2.URL(), s2.ControlURL())
	}
}

func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestControlAPI(t *testing.T) {
	s := start(t, t.TempDir(), Options{Instant: true})
	u := s.ControlURL()
	if code, body := call(t, "GET", u+"/sim/health", ""); code != 200 || !strings.Contains(body, `"ok": true`) {
		t.Errorf("health %d %s", code, body)
	}
	if code, body := call(t, "GET", u+"/sim/env", ""); code != 200 || !strings.Contains(body, "KOERIER_DIGIPOORT_URL="+s.URL()) {
		t.Errorf("env %d %s", code, body)
	}
	if code, body := call(t, "GET", u+"/sim/env?pfx=1", ""); code != 200 || !strings.Contains(body, "KOERIER_DIGIPOORT_CLIENT_PFX_PASSWORD=") {
		t.Errorf("env pfx %d %s", code, body)
	}
	// Scenarios.
	if code, _ := call(t, "PUT", u+"/sim/scenarios/2026000123", `{"scenario":"afleverfout"}`); code != 204 {
		t.Errorf("set scenario %d", code)
	}
	if code, body := call(t, "PUT", u+"/sim/scenarios/2026000123", `{"scenario":"bestaatniet"}`); code != 400 || !strings.Contains(body, "unknown scenario") {
		t.Errorf("bad scenario %d %s", code, body)
	}
	if code, _ := call(t, "PUT", u+"/sim/scenarios/2026000123", `{"scenario":`); code != 400 {
		t.Errorf("bad JSON %d", code)
	}
	code, body := call(t, "GET", u+"/sim/scenarios", "")
	if code != 200 || !strings.Contains(body, `"2026000123": "Afleverfout"`) {
		t.Errorf("scenarios %d %s", code, body)
	}
	if code, _ := call(t, "DELETE", u+"/sim/scenarios/2026000123", ""); code != 204 || len(s.overrides) != 0 {
		t.Errorf("delete scenario %d", code)
	}
	// Faults.
	if code, body := call(t, "PUT", u+"/sim/faults/aanleveren", `{"timeout":{"count":1,"delay":"3s"},"slow":{"probability":0.25,"delay":250}}`); code != 204 {
		t.Errorf("set faults %d %s", code, body)
	}
	if code, body := call(t, "PUT", u+"/sim/faults/aanleveren", `{"http500":{"probability":2}}`); code != 400 {
		t.Errorf("probability 2 accepted: %d %s", code, body)
	}
	code, body = call(t, "GET", u+"/sim/faults", "")
	var faults struct {
		Faults map[string]FaultConfig `json:"faults"`
	}
	if err := json.Unmarshal([]byte(body), &faults); err != nil || code != 200 {
		t.Fatalf("faults %d %s %v", code, body, err)
	}
	f := faults.Faults["aanleveren"]
	if f.Timeout == nil || f.Timeout.Count != 1 || time.Duration(f.Timeout.Delay) != 3*time.Second ||
		f.Slow == nil || time.Duration(f.Slow.Delay) != 250*time.Millisecond || f.HTTP500 != nil {
		t.Errorf("faults read back: %s", body)
	}
	if code, _ := call(t, "DELETE", u+"/sim/faults", ""); code != 204 || len(s.Faults()) != 0 {
		t.Errorf("clear faults %d", code)
	}
	// Pickups.
	if code, body := call(t, "POST", u+"/sim/pickups", `{"berichtsoort":"ICP"}`); code != 400 {
		t.Errorf("pickup without identity: %d %s", code, body)
	}
	code, body = call(t, "POST", u+"/sim/pickups", `{"berichtsoort":"ICP","identiteit":{"nummer":"1","type":"Fi"}}`)
	if code != 201 || !strings.Contains(body, `"kenmerk"`) || len(s.pickups) != 1 {
		t.Errorf("pickup %d %s", code, body)
	}
	// Counts, then reset.
	if code, body := call(t, "GET", u+"/sim/calls", ""); code != 200 || !strings.Contains(body, `"total": 0`) {
		t.Errorf("calls %d %s", code, body)
	}
	if code, body := call(t, "GET", u+"/sim/deliveries/none", ""); code != 200 || !strings.Contains(body, `"accepted": 0`) {
		t.Errorf("deliveries of an unknown aanleverkenmerk %d %s", code, body)
	}
	if code, _ := call(t, "POST", u+"/sim/reset", ""); code != 204 || len(s.pickups) != 0 {
		t.Errorf("reset %d", code)
	}
	// The control API is not on the TLS port and the WUS paths are not on the control port.
	if code, _ := call(t, "POST", u+wire.Aanlever.Path, ""); code != 404 {
		t.Errorf("WUS path on the control listener: %d", code)
	}
}

// TestResponsesValidateAgainstXSD runs every operation through the simulator's
// handler and validates each response payload against Logius' XSD.
func TestResponsesValidateAgainstXSD(t *testing.T) {
	xsd := filepath.Join(testfixtures.Dir(t), "spec", "digipoort-koppelvlak-1.2.xsd")
	xmllint := testfixtures.XMLLint(t)
	s := start(t, t.TempDir(), Options{Instant: true})
	client, _ := devcerts.LoadIssued(s.Paths().ClientCert, s.Paths().ClientKey)
	fp := client.Fingerprint()
	id := wire.Identiteit{Nummer: "001000044B37", Type: "Fi"}
	now := time.Now()
	run := func(op string, req any) any {
		t.Helper()
		x, err := xml.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		svc, _ := wire.ServiceOf(op)
		resp, _, fault := s.handle(&request{svc: svc, op: op, cert: client.Cert, certFP: fp, known: true, payload: x,
			now: time.Now().Add(time.Second).Truncate(time.Millisecond)})
		if fault != nil {
			t.Fatalf("%s: %v", op, fault)
		}
		return resp
	}
	const adres = "http://geenausp.nl"
	delivery := func(ak string) *wire.AanleverRequest {
		return &wire.AanleverRequest{Berichtsoort: "Omzetbelasting", Aanleverkenmerk: ak, IdentiteitBelanghebbende: id, RolBelanghebbende: "Bedrijf",
			BerichtInhoud: wire.BerichtInhoud{MimeType: "text/xml", Bestandsnaam: "a.xbrl", Inhoud: b64([]byte("<a/>"))}, AutorisatieAdres: adres}
	}
	withOntvanger := delivery("KoerierValidatieNietGelukt")
	withOntvanger.IdentiteitOntvanger = &wire.Identiteit{Nummer: "00000002003214394002", Type: "OIN"}
	deliver := run(wire.OpAanleveren, withOntvanger)
	kenmerk := deliver.(*wire.AanleverResponse).Kenmerk
	happy := run(wire.OpAanleveren, delivery("Happyflow")).(*wire.AanleverResponse).Kenmerk
	rejected := run(wire.OpAanleveren, delivery("Foutuitvragendepartij")).(*wire.AanleverResponse).Kenmerk
	s.AddPickup(Pickup{Berichtsoort: "ICP", Identiteit: digipoort.Identity{Nummer: "001000044B37", Type: "Fi"}})
	window := func() (*wire.Time, *wire.Time) {
		return &wire.Time{Time: now.Add(-time.Hour)}, &wire.Time{Time: now.Add(time.Hour)}
	}
	v, tot := window()
	statuses := func(name, k string) *wire.StatusWindowRequest {
		return &wire.StatusWindowRequest{XMLName: wire.Name(name), Kenmerk: k, AutorisatieAdres: adres}
	}
	nieuweStatussen := statuses("getNieuweStatussenProcesRequest", kenmerk)
	nieuweStatussen.TijdstempelVanaf, nieuweStatussen.TijdstempelTot = v, tot
	responses := map[string]any{
		"aanleveren":               deliver,
		"getStatussenProces":       run(wire.OpGetStatussenProces, statuses("getStatussenProcesRequest", kenmerk)),
		"getStatussenProcesHappy":  run(wire.OpGetStatussenProces, statuses("getStatussenProcesRequest", happy)),
		"getStatussenProces510":    run(wire.OpGetStatussenProces, statuses("getStatussenProcesRequest", rejected)),
		"getNieuweStatussenProces": run(wire.OpGetNieuweStatussenProces, nieuweStatussen),
		"getNieuweStatussen": run(wire.OpGetNieuweStatussen, &wire.GetNieuweStatussenRequest{Berichtsoort: "Omzetbelasting",
			IdentiteitBelanghebbende: id, AutorisatieAdres: adres}),
		"getBerichtsoorten": run(wire.OpGetBerichtsoorten, &wire.GetBerichtsoortenRequest{IdentiteitBelanghebbende: id, AutorisatieAdres: adres}),
		"getProcessen": run(wire.OpGetProcessen, &wire.GetProcessenRequest{Berichtsoort: "Omzetbelasting", IdentiteitBelanghebbende: id,
			AutorisatieAdres: adres}),
		"getBerichtenLijst": run(wire.OpGetBerichtenLijst, &wire.GetBerichtenLijstRequest{XMLName: wire.Name("getBerichtenLijstRequest"),
			AutorisatieAdres: adres}),
		"getNieuweBerichtenLijst": run(wire.OpGetNieuweBerichtenLijst, &wire.GetBerichtenLijstRequest{XMLName: wire.Name("getNieuweBerichtenLijstRequest"),
			AutorisatieAdres: adres}),
		"getBerichtenKenmerk": run(wire.OpGetBerichtenKenmerk, &wire.GetBerichtenKenmerkRequest{XMLName: wire.Name("getBerichtenKenmerkRequest"),
			Kenmerk: kenmerk, AutorisatieAdres: adres}),
		"getNieuweBerichtenKenmerk": run(wire.OpGetNieuweBerichtenKenmerk, &wire.GetBerichtenKenmerkRequest{
			XMLName: wire.Name("getNieuweBerichtenKenmerkRequest"), Kenmerk: happy, AutorisatieAdres: adres}),
		"getBerichten": run(wire.OpGetBerichten, &wire.GetBerichtenRequest{XMLName: wire.Name("getBerichtenRequest"), IdentiteitBelanghebbende: id,
			AutorisatieAdres: adres}),
		"getNieuweBerichten": run(wire.OpGetNieuweBerichten, &wire.GetBerichtenRequest{XMLName: wire.Name("getNieuweBerichtenRequest"),
			IdentiteitBelanghebbende: id, AutorisatieAdres: adres}),
		"getBerichtenLeeg": run(wire.OpGetBerichten, &wire.GetBerichtenRequest{XMLName: wire.Name("getBerichtenRequest"),
			IdentiteitBelanghebbende: wire.Identiteit{Nummer: "9", Type: "Fi"}, AutorisatieAdres: adres}),
	}
	dir := t.TempDir()
	var files []string
	for name, resp := range responses {
		x, err := xml.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name+".xml")
		os.WriteFile(f, x, 0o600)
		files = append(files, f)
	}
	out, err := exec.Command(xmllint, append([]string{"--noout", "--schema", xsd}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("simulator responses do not validate:\n%s", out)
	}
	if n := bytes.Count(out, []byte(" validates")); n != len(files) {
		t.Errorf("%d of %d validate:\n%s", n, len(files), out)
	}
	// The status list of the rejection scenario carries the fout and the <msg> details.
	st := responses["getStatussenProces"].(*wire.StatusResponse).Return.Resultaat
	if last := st[len(st)-1]; last.Statuscode != "311" || last.StatusFoutcode == nil || last.StatusFoutcode.Foutcode != "VAS500" ||
		!strings.Contains(last.Statusdetails, "<msg>") {
		t.Errorf("last status %+v", last)
	}
	if l := responses["getBerichtenKenmerk"].(*wire.BerichtenResponse).Return.Resultaat; len(l) != 1 || l[0].Aanleverkenmerk != "KoerierValidatieNietGelukt" {
		t.Errorf("reply %+v", l)
	}
	// The authority's verdict carries its Responsemessage.
	for name, want := range map[string]string{"getStatussenProcesHappy": "500", "getStatussenProces510": "510"} {
		st := responses[name].(*wire.StatusResponse).Return.Resultaat
		if last := st[len(st)-1]; last.Statuscode != want || !strings.HasPrefix(last.Statusdetails, `<Responsemessage version="2006.1">`) {
			t.Errorf("%s: last status %+v", name, last)
		}
	}
	if got := responses["aanleveren"].(*wire.AanleverResponse).IdentiteitOntvanger; got == nil || got.Nummer != BelastingdienstOIN {
		t.Errorf("aanleverResponse names no receiver: %+v", got)
	}
	if l := responses["getNieuweBerichtenLijst"]; !strings.Contains(fmt.Sprint(l), "ICP") {
		t.Errorf("nieuwe berichten lijst %+v", l)
	}
}

// TestExpectedSequences pins every scenario's expectation to Logius' status flow,
// written out here rather than derived from the simulator: Digipoort's own validation
// (301, or 311) before the hand-over (405), the authority's rejection after 400 as 510,
// the captured happy flow, 420 with AFS600 after the retries.
func TestExpectedSequences(t *testing.T) {
	const validated = "105 100 110 200 301 301 405"
	for _, tc := range []struct {
		sc                Scenario
		logius            bool
		codes, final      string
		outcome           Outcome
		deliverFault      string
		statusFault       string
		deliverT, statusT bool
	}{
		{Happyflow, true, "105 100 110 200 301 301 405 400 500", "", OutcomeAccepted, "", "", false, false},
		{AanleverFault, true, "", "", OutcomeRefused, "ALS100", "", false, false},
		{StatusInformatieFault, true, validated + " 400 500", "", OutcomeAccepted, "", "STS100", false, false},
		{Afleverfout, true, validated + " 410", "AFS400", OutcomeFailed, "", "", false, false},
		{Foutuitvragendepartij, true, validated + " 400 510", "", OutcomeRejected, "", "", false, false},
		{TechnischProbleemAfleveren, true, validated + " 420 400 500", "", OutcomeAccepted, "", "", false, false},
		{MaximaalAantalAfleverpogingen, true, validated + " 420 420", "AFS600", OutcomeFailed, "", "", false, false},
		{ZwaarbelastAanleveren, true, validated + " 400 500", "", OutcomeAccepted, "ALS400", "", true, false},
		{OverbelastAanleveren, true, validated + " 400 500", "", OutcomeAccepted, "ALS400", "", true, false},
		{ZwaarbelastStatusInformatie, true, validated + " 400 500", "", OutcomeAccepted, "", "STS400", false, true},
		{OverbelastStatusInformatie, true, validated + " 400 500", "", OutcomeAccepted, "", "STS400", false, true},
		{KoerierValidatieNietGelukt, false, "105 100 110 200 311", "VAS500", OutcomeRejected, "", "", false, false},
	} {
		e := Expected(tc.sc)
		if got := strings.Join(e.Codes, " "); got != tc.codes || e.FinalFoutcode != tc.final || e.Outcome != tc.outcome || e.Logius != tc.logius ||
			e.DeliverFault != tc.deliverFault || e.StatusFault != tc.statusFault || e.DeliverFaultTransient != tc.deliverT ||
			e.StatusFaultTransient != tc.statusT {
			t.Errorf("%s: %+v", tc.sc, e)
		}
		if tc.logius == strings.HasPrefix(string(tc.sc), "Koerier") {
			t.Errorf("%s: Koerier's own scenarios, and only those, start with Koerier", tc.sc)
		}
	}
	if len(Expectations()) != 12 || len(LogiusScenarios()) != 11 {
		t.Errorf("%d expectations, %d Logius scenarios", len(Expectations()), len(LogiusScenarios()))
	}
}
