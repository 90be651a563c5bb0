package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"koerier/digipoort"
	"koerier/digipoort/simulator"
)

// startSimulator runs the simulator over mutual TLS and points KOERIER_DIGIPOORT_* at it.
func startSimulator(t *testing.T, opts simulator.Options) *simulator.Sim {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts.Dir = t.TempDir()
	sim, err := simulator.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	setEnv(t, sim.Env())
	return sim
}

func TestConformancePassesEveryScenarioAgainstTheSimulator(t *testing.T) {
	startSimulator(t, simulator.Options{StepInterval: 5 * time.Millisecond, OverloadWindow: 200 * time.Millisecond})
	stdout, stderr, err := runDigipoortCLI(t, "digipoort", "conformance", "--subject", "NL001000044B37", "--poll", "20ms",
		"--timeout", "20s", "--json")
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout, stderr)
	}
	v := decodeOne(t, stdout)
	if v["passed"] != true {
		t.Errorf("not passed: %v", v)
	}
	list := v["scenarios"].([]any)
	if len(list) != 11 {
		t.Fatalf("%d scenarios, want Logius' 11", len(list))
	}
	want := map[string]string{"Happyflow": "accepted", "AanleverFault": "send_failed", "StatusInformatieFault": "sent",
		"Afleverfout": "failed", "Foutuitvragendepartij": "rejected", "MaximaalAantalAfleverpogingen": "failed",
		"OverbelastAanleveren": "accepted", "ZwaarbelastStatusInformatie": "accepted"}
	for _, x := range list {
		m := x.(map[string]any)
		for _, k := range []string{"name", "passed", "codes", "derived_status"} {
			if _, ok := m[k]; !ok {
				t.Errorf("scenario lacks %q: %v", k, m)
			}
		}
		name := m["name"].(string)
		if m["passed"] != true {
			t.Errorf("%s failed: %v", name, m)
		}
		if w, ok := want[name]; ok && m["derived_status"] != w {
			t.Errorf("%s derived %v, want %s", name, m["derived_status"], w)
		}
		if name == "Happyflow" {
			var codes []string
			for _, c := range m["codes"].([]any) {
				codes = append(codes, c.(string))
			}
			if got := strings.Join(codes, " "); got != "105 100 110 200 301 301 405 400 500" {
				t.Errorf("Happyflow codes %s", got)
			}
		}
	}
	if !strings.Contains(stderr, "Happyflow: delivered, kenmerk") {
		t.Errorf("no progress on stderr:\n%s", stderr)
	}
}

// A scenario that does not end as Logius' does fails the run: the table says which,
// and the command exits non-zero.
func TestConformanceFailsAScenarioThatEndsOtherwise(t *testing.T) {
	sim := startSimulator(t, simulator.Options{StepInterval: 2 * time.Millisecond})
	if err := sim.SetScenario("Happyflow", simulator.Afleverfout); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runDigipoortCLI(t, "digipoort", "conformance", "--subject", "NL001000044B37", "--poll", "10ms",
		"--scenario", "Happyflow", "--scenario", "afleverfout")
	if err == nil || !strings.Contains(err.Error(), "1 of 2 conformance scenarios failed") {
		t.Fatalf("err %v\n%s", err, stdout)
	}
	for _, want := range []string{"SCENARIO", "Happyflow", "FAIL", "ended failed; expected accepted", "Afleverfout", "pass"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
}

func TestDeliverWithAChosenAanleverkenmerk(t *testing.T) {
	sim := startSimulator(t, simulator.Options{StepInterval: 2 * time.Millisecond})
	stdout, stderr, err := runDigipoortCLI(t, "digipoort", "deliver", "--aanleverkenmerk", "MaximaalAantalAfleverpogingen",
		"--subject", "NL001000044B37", "--file", "../internal/demo/omzetbelasting-demo.xbrl", "--poll", "10ms", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	v := decodeOne(t, stdout)
	if v["derived_status"] != "failed" || v["final"] != true || v["aanleverkenmerk"] != "MaximaalAantalAfleverpogingen" {
		t.Errorf("%v", v)
	}
	codes := statusCodes(t, v)
	if codes[len(codes)-1] != "420" {
		t.Errorf("codes %v", codes)
	}
	if st := sim.Deliveries("MaximaalAantalAfleverpogingen"); st.Accepted != 1 {
		t.Errorf("simulator saw %+v", st)
	}
}

func TestDirectDeliveriesRefuseProduction(t *testing.T) {
	startSimulator(t, simulator.Options{})
	for _, args := range [][]string{
		{"digipoort", "conformance", "--subject", "NL001000044B37", "--environment", "production"},
		{"digipoort", "deliver", "--aanleverkenmerk", "X", "--subject", "NL001000044B37", "--file", "../internal/demo/omzetbelasting-demo.xbrl",
			"--environment", "production"},
	} {
		_, _, err := runDigipoortCLI(t, args...)
		if err == nil || !strings.Contains(err.Error(), "refusing Logius' production Digipoort") {
			t.Errorf("%v: err %v", args[1], err)
		}
	}
	t.Setenv(digipoort.EnvURL, "")
	t.Setenv(digipoort.EnvEnvironment, digipoort.EnvironmentProduction)
	_, _, err := runDigipoortCLI(t, "digipoort", "conformance", "--subject", "NL001000044B37")
	if err == nil || !strings.Contains(err.Error(), "refusing Logius' production Digipoort") {
		t.Errorf("production from the environment: err %v", err)
	}
}

func TestDeliverRefusesWhatIsNotTheDeclaration(t *testing.T) {
	startSimulator(t, simulator.Options{})
	png := writeFile(t, "aangifte.png", []byte("\x89PNG\r\n\x1a\n"))
	_, _, err := runDigipoortCLI(t, "digipoort", "deliver", "--aanleverkenmerk", "X", "--subject", "NL001000044B37", "--file", png)
	if err == nil || !strings.Contains(err.Error(), "aangifte.png") {
		t.Errorf("err %v", err)
	}
}
