package simulator

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"koerier/digipoort"
)

// modePKI is one development PKI for the mode tests: generating the RSA keys is the
// expensive part of starting a simulator, and these tests do not test it.
var modePKI string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "koerier-sim-mode-")
	if err != nil {
		panic(err)
	}
	modePKI = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func modeClient(t *testing.T, s *Sim) *digipoort.Client {
	t.Helper()
	cfg, err := s.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPTimeout = 10 * time.Second
	c, err := digipoort.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

var modeID = digipoort.Identity{Nummer: "001000044B37", Type: "Fi"}

func modeDelivery(aanleverkenmerk string) digipoort.DeliverRequest {
	return digipoort.DeliverRequest{
		Berichtsoort: "Omzetbelasting", Aanleverkenmerk: aanleverkenmerk, Belanghebbende: modeID,
		Rol: "Bedrijf", MimeType: "text/xml", Bestandsnaam: "Omzetbelasting.xbrl",
		Inhoud: []byte(`<xbrli:xbrl xmlns:xbrli="http://www.xbrl.org/2003/instance"/>`),
	}
}

// pickupsOf polls getBerichtenKenmerk until the process has its reply (or fails).
func pickupsOf(t *testing.T, c *digipoort.Client, kenmerk string, within time.Duration) []digipoort.Bericht {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b, err := c.BerichtenKenmerk(context.Background(), kenmerk, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reply for %s within %s", kenmerk, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDefaultModeDeduplicatesAndEchoes pins the default mode that every other test
// relies on: a repeat is answered with the original kenmerk, getProcessen lists one
// process, and the reply echoes the aanleverkenmerk (so FindDelivery finds it).
func TestDefaultModeDeduplicatesAndEchoes(t *testing.T) {
	s := start(t, modePKI, Options{StepInterval: 5 * time.Millisecond})
	if m := s.Mode(); m != (Mode{Realistic: false, Scale: 1}) {
		t.Fatalf("default mode %+v", m)
	}
	c := modeClient(t, s)
	ctx := context.Background()
	const ak = "2026000501"
	first, err := c.Deliver(ctx, modeDelivery(ak))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Deliver(ctx, modeDelivery(ak))
	if err != nil {
		t.Fatal(err)
	}
	if second.Kenmerk != first.Kenmerk {
		t.Errorf("repeat got %s, first %s", second.Kenmerk, first.Kenmerk)
	}
	if ks, err := c.Processen(ctx, "Omzetbelasting", modeID); err != nil || !slices.Equal(ks, []string{first.Kenmerk}) {
		t.Errorf("getProcessen %v %v", ks, err)
	}
	st := s.Deliveries(ak)
	if st.Accepted != 1 || st.Duplicates != 1 || st.Repeated != 0 || len(st.Processes) != 1 || st.Processes[0].Repeat || st.Processes[0].Realistic {
		t.Errorf("stats %+v", st)
	}
	b := pickupsOf(t, c, first.Kenmerk, 5*time.Second)
	if len(b) != 1 || b[0].Aanleverkenmerk != ak || !strings.Contains(string(b[0].Inhoud), `aanleverkenmerk="`+ak+`"`) {
		t.Errorf("reply does not echo the aanleverkenmerk: %+v %s", b, b[0].Inhoud)
	}
	if k, found, err := c.FindDelivery(ctx, "Omzetbelasting", modeID, ak, nil); err != nil || !found || k != first.Kenmerk {
		t.Errorf("FindDelivery %q %v %v", k, found, err)
	}
}

// TestRealisticModeRepeatIsASecondProcess: in realistic mode a repeated delivery gets
// its own kenmerk, both processes are listed by getProcessen and /sim/deliveries and
// counted, statuses come spread over the scaled realistic durations, and no reply
// carries the aanleverkenmerk (so FindDelivery cannot find the delivery).
func TestRealisticModeRepeatIsASecondProcess(t *testing.T) {
	s := start(t, modePKI, Options{StepInterval: 5 * time.Millisecond})
	// A realistic minute takes 240ms, the happy flow (8m40s) 2.08s.
	const scale = 0.004
	if err := s.SetMode(Mode{Realistic: true, Scale: scale}); err != nil {
		t.Fatal(err)
	}
	flow := s.FlowDuration(Happyflow)
	if flow != 2080*time.Millisecond {
		t.Fatalf("scaled happy flow %s", flow)
	}
	c := modeClient(t, s)
	ctx := context.Background()
	const ak = "2026000502"

	before := time.Now()
	first, err := c.Deliver(ctx, modeDelivery(ak))
	if err != nil {
		t.Fatal(err)
	}
	early, err := c.Statuses(ctx, first.Kenmerk, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// The simulator's clock at the status call lies in [before, after]: every status
	// scheduled after `after` cannot be there yet. Assert it for those, and that at
	// least the 500 was among them (the calls take far less than 2s).
	after := time.Now()
	timings := RealisticTimings(Happyflow)
	scaled := func(d Duration) time.Duration { return Mode{Realistic: true, Scale: scale}.scaled(time.Duration(d)) }
	// The process starts at the simulator's clock truncated to the millisecond, which
	// is not before `before` truncated.
	base := before.Truncate(time.Millisecond)
	if len(early) == 0 || early[0].Code != "105" {
		t.Fatalf("right after delivery: %+v", early)
	}
	if after.Sub(before) >= flow {
		t.Fatalf("delivering and asking took %s, longer than the whole scaled flow", after.Sub(before))
	}
	for i, tm := range timings {
		if base.Add(scaled(tm.After)).After(after) && i < len(early) {
			t.Errorf("status %s (due %s after delivery) already there %s after delivery: %+v", tm.Code, scaled(tm.After), after.Sub(before), early)
		}
	}
	if b, _ := c.BerichtenKenmerk(ctx, first.Kenmerk, time.Time{}, time.Time{}); len(b) != 0 {
		t.Errorf("a reply before the flow ended: %+v", b)
	}

	second, err := c.Deliver(ctx, modeDelivery(ak))
	if err != nil {
		t.Fatal(err)
	}
	if second.Kenmerk == first.Kenmerk {
		t.Fatalf("a repeated delivery was de-duplicated in realistic mode: %s", second.Kenmerk)
	}
	// Processes keep the mode they were delivered in: switching back changes nothing
	// for these two.
	if err := s.SetMode(Mode{}); err != nil {
		t.Fatal(err)
	}

	ks, err := c.Processen(ctx, "Omzetbelasting", modeID)
	if err != nil || len(ks) != 2 || !slices.Contains(ks, first.Kenmerk) || !slices.Contains(ks, second.Kenmerk) {
		t.Errorf("getProcessen lists %v (%v), want both %s and %s", ks, err, first.Kenmerk, second.Kenmerk)
	}
	st := s.Deliveries(ak)
	if st.Attempts != 2 || st.Accepted != 2 || st.Duplicates != 0 || st.Repeated != 1 || st.Received != 2 ||
		!slices.Equal(st.Kenmerken, []string{first.Kenmerk, second.Kenmerk}) || len(st.Processes) != 2 ||
		st.Processes[0].Repeat || !st.Processes[1].Repeat || !st.Processes[0].Realistic || !st.Processes[1].Realistic ||
		st.Processes[1].Kenmerk != second.Kenmerk {
		t.Errorf("stats %+v", st)
	}
	// The control API shows both processes.
	code, body := call(t, "GET", s.ControlURL()+"/sim/deliveries/"+ak, "")
	var one DeliveryStats
	if err := json.Unmarshal([]byte(body), &one); err != nil || code != 200 || one.Repeated != 1 || len(one.Processes) != 2 ||
		one.Processes[1].Kenmerk != second.Kenmerk || !one.Processes[1].Repeat || one.Processes[0].Belanghebbende != "Fi:001000044B37" {
		t.Errorf("GET /sim/deliveries/%s: %d %s", ak, code, body)
	}
	code, body = call(t, "GET", s.ControlURL()+"/sim/deliveries", "")
	var all struct {
		Deliveries map[string]DeliveryStats `json:"deliveries"`
	}
	if err := json.Unmarshal([]byte(body), &all); err != nil || code != 200 || len(all.Deliveries[ak].Processes) != 2 ||
		all.Deliveries[ak].Accepted != 2 {
		t.Errorf("GET /sim/deliveries: %d %s", code, body)
	}

	// The flow ends after the scaled 8m40s, every status at its scaled time.
	for _, k := range []string{first.Kenmerk, second.Kenmerk} {
		pickupsOf(t, c, k, flow+10*time.Second)
	}
	for _, d := range []digipoort.DeliverResponse{first, second} {
		sts, err := c.Statuses(ctx, d.Kenmerk, time.Time{}, time.Time{})
		if err != nil || len(sts) != len(timings) {
			t.Fatalf("statuses of %s: %+v %v", d.Kenmerk, sts, err)
		}
		for i, tm := range timings {
			want := scaled(tm.After)
			if got := sts[i].Time.Sub(d.Aangeleverd); sts[i].Code != tm.Code || got < want-time.Millisecond || got > want {
				t.Errorf("status %d of %s: %s after %s, want %s after %s", i, d.Kenmerk, sts[i].Code, got, tm.Code, want)
			}
		}
	}
	// No reply carries the aanleverkenmerk, so it cannot be found by it.
	for _, k := range []string{first.Kenmerk, second.Kenmerk} {
		for _, b := range pickupsOf(t, c, k, time.Second) {
			if b.Aanleverkenmerk != "" || strings.Contains(string(b.Inhoud), ak) {
				t.Errorf("reply of %s carries the aanleverkenmerk: %+v %s", k, b, b.Inhoud)
			}
		}
	}
	if berichten, err := c.Berichten(ctx, modeID, "Omzetbelasting", time.Time{}, time.Time{}); err != nil || len(berichten) != 2 {
		t.Errorf("getBerichten: %d replies, %v", len(berichten), err)
	}
	if k, found, err := c.FindDelivery(ctx, "Omzetbelasting", modeID, ak, nil); err != nil || found {
		t.Errorf("FindDelivery found %q %v (%v): realistic replies carry no aanleverkenmerk", k, found, err)
	}
	for _, p := range s.Deliveries(ak).Processes {
		if !p.Ended || p.Status != "500" {
			t.Errorf("process after its flow: %+v", p)
		}
	}
	// Back in the default mode a new delivery is quick again.
	if s.FlowDuration(Happyflow) != 40*time.Millisecond {
		t.Errorf("default-mode flow %s", s.FlowDuration(Happyflow))
	}
}

// TestModeControlAPI: GET/PUT /sim/mode round-trip, a bad body is a 400 that says
// what is wrong and changes nothing, /sim/health shows the mode and a reset keeps it.
func TestModeControlAPI(t *testing.T) {
	s := start(t, modePKI, Options{StepInterval: 5 * time.Millisecond})
	u := s.ControlURL() + "/sim/mode"
	get := func() (modeView, string) {
		t.Helper()
		code, body := call(t, "GET", u, "")
		var v modeView
		if err := json.Unmarshal([]byte(body), &v); err != nil || code != 200 {
			t.Fatalf("GET /sim/mode: %d %s %v", code, body, err)
		}
		return v, body
	}
	v, _ := get()
	if v.Realistic || v.Scale != 1 || time.Duration(v.Flows[Happyflow]) != 40*time.Millisecond {
		t.Errorf("default mode %+v", v)
	}
	code, body := call(t, "PUT", u, `{"realistic": true, "scale": 0.01}`)
	if code != 200 || !strings.Contains(body, `"realistic": true`) {
		t.Fatalf("PUT: %d %s", code, body)
	}
	v, got := get()
	if !v.Realistic || v.Scale != 0.01 || s.Mode() != (Mode{Realistic: true, Scale: 0.01}) ||
		time.Duration(v.Flows[Happyflow]) != 5200*time.Millisecond || time.Duration(v.Flows[MaximaalAantalAfleverpogingen]) != 2594800*time.Millisecond {
		t.Errorf("after PUT: %+v", v)
	}
	// What GET returns can be PUT back.
	if code, body := call(t, "PUT", u, got); code != 200 || s.Mode() != (Mode{Realistic: true, Scale: 0.01}) {
		t.Errorf("PUT of the GET body: %d %s", code, body)
	}
	if code, body := call(t, "GET", s.ControlURL()+"/sim/health", ""); code != 200 || !strings.Contains(body, `"realistic": true`) {
		t.Errorf("health %d %s", code, body)
	}
	for _, bad := range []struct{ body, says string }{
		{``, "empty"},
		{`{}`, "(true or false) is required"},
		{`{"scale": 0.5}`, "(true or false) is required"},
		{`{"realistic": "yes"}`, "invalid JSON body"},
		{`{"realistic": true, "scale": 0}`, "scale must be greater than 0"},
		{`{"realistic": true, "scale": 1.5}`, "scale must be a number greater than 0 and at most 1"},
		{`{"realistic": true, "scale": -1}`, "scale must be"},
		{`{"realistic": true, "speed": 2}`, "unknown field"},
		{`[true]`, "invalid JSON body"},
	} {
		code, body := call(t, "PUT", u, bad.body)
		if code != 400 || !strings.Contains(body, bad.says) {
			t.Errorf("PUT %s: %d %s, want 400 saying %q", bad.body, code, body, bad.says)
		}
	}
	if s.Mode() != (Mode{Realistic: true, Scale: 0.01}) {
		t.Errorf("a refused body changed the mode: %+v", s.Mode())
	}
	if code, _ := call(t, "POST", s.ControlURL()+"/sim/reset", ""); code != 204 || !s.Mode().Realistic {
		t.Errorf("reset: %d, mode %+v", code, s.Mode())
	}
	if code, body := call(t, "PUT", u, `{"realistic": false}`); code != 200 || s.Mode() != (Mode{Scale: 1}) {
		t.Errorf("back to default: %d %s %+v", code, body, s.Mode())
	}

	// The Go API validates the same way; Scale 0 is the zero value, real time.
	if err := s.SetMode(Mode{Realistic: true, Scale: 2}); err == nil {
		t.Error("scale 2 accepted")
	}
	if err := s.SetMode(Mode{Realistic: true}); err != nil || s.Mode().Scale != 1 {
		t.Errorf("zero scale: %v %+v", err, s.Mode())
	}
	if _, err := Start(context.Background(), Options{Dir: modePKI, Mode: Mode{Scale: -1}}); err == nil || !strings.Contains(err.Error(), "scale") {
		t.Errorf("Start with scale -1: %v", err)
	}
}
