package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"koerier/digipoort"
	"koerier/digipoort/devcerts"
	"koerier/digipoort/simulator"
)

// runDigipoortCLI runs the command tree in-process and returns stdout and stderr.
func runDigipoortCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// setEnv sets the simulator's client environment, clearing every other
// KOERIER_DIGIPOORT_* variable first so that the developer's own settings do not leak in.
func setEnv(t *testing.T, lines []string) {
	t.Helper()
	for _, k := range digipoort.EnvVariables() {
		t.Setenv(k, "")
	}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		t.Setenv(k, v)
	}
}

// deliverAndWait delivers through the simulator and waits until the flow ends.
func deliverAndWait(t *testing.T, c *digipoort.Client, aanleverkenmerk string) string {
	t.Helper()
	ctx := context.Background()
	resp, err := c.Deliver(ctx, digipoort.DeliverRequest{Berichtsoort: "Omzetbelasting", Aanleverkenmerk: aanleverkenmerk,
		Belanghebbende: digipoort.Identity{Nummer: "001000044B37", Type: "Fi"}, Rol: "Bedrijf", MimeType: "text/xml",
		Bestandsnaam: "ob.xbrl", Inhoud: []byte("<xbrl/>")})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ss, _ := c.Statuses(ctx, resp.Kenmerk, time.Time{}, time.Time{})
		if n := len(ss); n > 0 && strings.Contains(" 500 311 210 ", " "+ss[n-1].Code+" ") {
			return resp.Kenmerk
		}
		if time.Now().After(deadline) {
			t.Fatalf("flow of %s did not end", aanleverkenmerk)
		}
	}
}

// decodeOne reads exactly one JSON object from s.
func decodeOne(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("more than one JSON value:\n%s", s)
	}
	return v
}

func statusCodes(t *testing.T, v map[string]any) []string {
	t.Helper()
	list, ok := v["statuses"].([]any)
	if !ok {
		t.Fatalf("statuses is not a list: %v", v)
	}
	var out []string
	for _, x := range list {
		m := x.(map[string]any)
		for _, k := range []string{"code", "time", "description", "error_code"} {
			if _, ok := m[k]; !ok {
				t.Errorf("status lacks %q: %v", k, m)
			}
		}
		out = append(out, m["code"].(string))
	}
	return out
}

func TestDigipoortStatusCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := simulator.Start(ctx, simulator.Options{Dir: t.TempDir(), StepInterval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cfg, err := sim.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := digipoort.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	setEnv(t, sim.Env())

	t.Run("json", func(t *testing.T) {
		k := deliverAndWait(t, c, "2026000123")
		stdout, stderr, err := runDigipoortCLI(t, "digipoort", "status", "--kenmerk", k, "--json")
		if err != nil || stderr != "" {
			t.Fatalf("%v %s", err, stderr)
		}
		v := decodeOne(t, stdout)
		if v["kenmerk"] != k || v["derived_status"] != "accepted" {
			t.Errorf("%v", v)
		}
		if got := strings.Join(statusCodes(t, v), " "); got != "105 100 110 200 301 301 405 400 500" {
			t.Errorf("codes %s", got)
		}
		first := v["statuses"].([]any)[0].(map[string]any)
		if first["description"] != "Aanleverproces gestart" || first["error_code"] != "" {
			t.Errorf("first status %v", first)
		}
		if _, err := time.Parse(time.RFC3339, first["time"].(string)); err != nil {
			t.Errorf("time %v", first["time"])
		}
	})

	t.Run("table", func(t *testing.T) {
		k := deliverAndWait(t, c, "KoerierValidatieNietGelukt-1")
		stdout, _, err := runDigipoortCLI(t, "digipoort", "status", "--kenmerk", k)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"kenmerk " + k, "CODE", "TIME", "DESCRIPTION", "ERROR", "105 ", "311 ", "VAS500",
			"details of 311:", "<msg>", "derived status: rejected (afgekeurd)", "advice:"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("table lacks %q:\n%s", want, stdout)
			}
		}
		if strings.Index(stdout, "105 ") > strings.Index(stdout, "100 ") {
			t.Errorf("not in Digipoort's order:\n%s", stdout)
		}
	})

	t.Run("new", func(t *testing.T) {
		k := deliverAndWait(t, c, "2026000124")
		stdout, _, err := runDigipoortCLI(t, "digipoort", "status", "--kenmerk", k, "--new", "--json")
		if err != nil {
			t.Fatal(err)
		}
		if v := decodeOne(t, stdout); len(statusCodes(t, v)) != 9 || v["derived_status"] != "accepted" {
			t.Errorf("first --new: %s", stdout)
		}
		stdout, _, err = runDigipoortCLI(t, "digipoort", "status", "--kenmerk", k, "--new", "--json")
		if err != nil {
			t.Fatal(err)
		}
		if v := decodeOne(t, stdout); len(statusCodes(t, v)) != 0 || v["derived_status"] != "sent" {
			t.Errorf("second --new: %s", stdout)
		}
		stdout, _, _ = runDigipoortCLI(t, "digipoort", "status", "--kenmerk", k, "--new")
		if !strings.Contains(stdout, "no new statuses") {
			t.Errorf("table for no new statuses:\n%s", stdout)
		}
	})

	t.Run("210", func(t *testing.T) {
		ca, _ := devcerts.LoadIssued(sim.Paths().CA, sim.Paths().CAKey)
		stranger, err := ca.Issue(devcerts.ClientTemplate("unknown to Digipoort"))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		stranger.Write(dir+"/c.pem", dir+"/k.pem")
		scfg := cfg
		scfg.ClientCertificate = stranger.TLS()
		sc, _ := digipoort.New(scfg)
		k := deliverAndWait(t, sc, "2026000125")
		t.Setenv(digipoort.EnvClientCert, dir+"/c.pem")
		t.Setenv(digipoort.EnvClientKey, dir+"/k.pem")
		stdout, stderr, err := runDigipoortCLI(t, "digipoort", "status", "--kenmerk", k, "--json")
		if err != nil {
			t.Fatalf("210 is an answer, not a command failure: %v", err)
		}
		v := decodeOne(t, stdout)
		if got := strings.Join(statusCodes(t, v), " "); got != "105 100 110 210" || v["derived_status"] != "failed" {
			t.Errorf("%s", stdout)
		}
		if !strings.Contains(stderr, "client certificate") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("stderr should say, on one line, to check the certificate: %q", stderr)
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, _, err := runDigipoortCLI(t, "digipoort", "status", "--kenmerk", "00000000-0000-0000-0000-000000000000", "--json")
		if err == nil || !strings.Contains(err.Error(), "STS100") || strings.Contains(err.Error(), "\n") {
			t.Errorf("unknown kenmerk: %v", err)
		}
		if _, _, err := runDigipoortCLI(t, "digipoort", "status"); err == nil || !strings.Contains(err.Error(), "--kenmerk") {
			t.Errorf("missing --kenmerk: %v", err)
		}
		t.Setenv(digipoort.EnvURL, "")
		t.Setenv(digipoort.EnvCA, "")
		_, _, err = runDigipoortCLI(t, "digipoort", "status", "--kenmerk", "x")
		if err == nil || !strings.Contains(err.Error(), digipoort.EnvURL) || !strings.Contains(err.Error(), digipoort.EnvCA) ||
			strings.Contains(err.Error(), "\n") {
			t.Errorf("missing configuration: %v", err)
		}
	})
}
