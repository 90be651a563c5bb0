// Package interop checks the Digipoort simulator against an independent SOAP stack:
// Python's zeep, python-xmlsec and lxml, driven by Logius' WSDLs and XSD. Our client
// and simulator share koerier/digipoort/wsse and koerier/digipoort/internal/wire, so
// their own tests cannot see a mistake they make together (a wrong element order, a
// signature shape only goxmldsig accepts, a fault without the detail the WSDL
// promises). A third-party stack can: the simulator must answer it like Digipoort,
// and because our client is tested against the simulator, the client cannot drift
// either.
package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"koerier/digipoort/internal/testfixtures"
	"koerier/digipoort/internal/wire"
	"koerier/digipoort/simulator"
)

// report is what testdata/interop.py prints.
type report struct {
	Zeep        string      `json:"zeep"`
	StatusPolls int         `json:"status_polls"`
	Operations  []opRecord  `json:"operations"`
	Malformed   []badRecord `json:"malformed"`
}

type opRecord struct {
	Service      string   `json:"service"`
	Op           string   `json:"op"`
	Label        string   `json:"label"`
	OK           bool     `json:"ok"`
	Error        string   `json:"error"`
	Verified     bool     `json:"verified"`
	XSDValid     bool     `json:"xsd_valid"`
	ElementOK    bool     `json:"element_ok"`
	Payload      string   `json:"payload"`
	ZeepParsed   bool     `json:"zeep_parsed"`
	ActionOK     bool     `json:"action_ok"`
	Action       string   `json:"action"`
	RelatesToOK  bool     `json:"relates_to_ok"`
	XSDErrors    []string `json:"xsd_errors"`
	Results      int      `json:"results"`
	Found        []string `json:"found"`
	Missing      []string `json:"missing"`
	Statuscodes  []string `json:"statuscodes"`
	Milliseconds int      `json:"ms"`
}

type badRecord struct {
	Service          string   `json:"service"`
	Op               string   `json:"op"`
	Case             string   `json:"case"`
	HTTPStatus       int      `json:"http_status"`
	Fault            bool     `json:"fault"`
	Faultcode        string   `json:"faultcode"`
	Foutcode         string   `json:"foutcode"`
	Foutbeschrijving string   `json:"foutbeschrijving"`
	Detail           string   `json:"detail"`
	DetailValid      bool     `json:"detail_valid"`
	FaultActionOK    bool     `json:"fault_action_ok"`
	FaultAction      string   `json:"fault_action"`
	RelatesToOK      bool     `json:"relates_to_ok"`
	Signed           bool     `json:"signed"`
	XSDErrors        []string `json:"xsd_errors"`
	Error            string   `json:"error"`
}

// allOperations are the operations of the three WSDLs; each must have been called.
var allOperations = []string{
	wire.OpAanleveren,
	wire.OpGetStatussenProces, wire.OpGetNieuweStatussenProces, wire.OpGetNieuweStatussen, wire.OpGetBerichtsoorten, wire.OpGetProcessen,
	wire.OpGetBerichtenLijst, wire.OpGetNieuweBerichtenLijst, wire.OpGetBerichtenKenmerk, wire.OpGetNieuweBerichtenKenmerk,
	wire.OpGetBerichten, wire.OpGetNieuweBerichten,
}

// faultPrefix is the fault-code prefix of each service as the script names them.
var faultPrefix = map[string]string{
	"aanleverservice":         wire.Aanlever.FaultCode,
	"statusinformatieservice": wire.Statusinformatie.FaultCode,
	"ophaalservice":           wire.Ophaal.FaultCode,
}

// python returns a python3 that imports zeep, xmlsec and lxml. Debian's python3-zeep
// and python3-xmlsec install for /usr/bin/python3, which need not be the python3 first
// on PATH (pyenv, a virtualenv), so both are tried. Missing packages fail the test:
// this check is part of the suite, not optional.
func python(t *testing.T) string {
	t.Helper()
	var candidates, tried []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	for _, p := range candidates {
		out, err := exec.Command(p, "-c", "import zeep, xmlsec, lxml").CombinedOutput()
		if err == nil {
			return p
		}
		tried = append(tried, fmt.Sprintf("%s: %s", p, firstLine(string(out), err)))
	}
	t.Fatalf("no python3 with zeep, xmlsec and lxml (%s): run ./scripts/ensure-tools.sh, which installs python3-zeep and python3-xmlsec",
		strings.Join(tried, "; "))
	return ""
}

func firstLine(out string, err error) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if l := lines[len(lines)-1]; l != "" {
		return l
	}
	return err.Error()
}

// TestInteropZeep starts the simulator over mutual TLS with a fresh development PKI,
// runs testdata/interop.py against it and checks its report: every operation
// answered, the answer's signature verified by xmlsec against the simulator's signing
// certificate, parsed by zeep in strict mode, its Body payload valid against Logius'
// XSD, wsa:Action as the WSDL says and wsa:RelatesTo our MessageID, and the expected
// process in it; every malformed request refused with an unsigned SOAP fault whose
// detail is the service's fault element with the service's x100 code.
func TestInteropZeep(t *testing.T) {
	sim := startSim(t)
	rep, elapsed := runScript(t, sim)
	t.Logf("zeep %s: %d calls (%d status polls) and %d malformed requests in %s",
		rep.Zeep, len(rep.Operations), rep.StatusPolls, len(rep.Malformed), elapsed.Round(time.Millisecond))
	checkOperations(t, rep.Operations)
	checkMalformed(t, rep.Malformed)
}

// TestInteropDetectsBadSignatures makes the simulator tamper with or leave unsigned
// every answer and checks that the script then reports no operation as verified, so
// that TestInteropZeep's "verified" cannot be vacuous.
func TestInteropDetectsBadSignatures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault simulator.FaultConfig
		want  string
	}{
		{"tampered", simulator.FaultConfig{Tamper: &simulator.Rule{Probability: 1}}, "does not verify"},
		{"unsigned", simulator.FaultConfig{Unsigned: &simulator.Rule{Probability: 1}}, "not signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t)
			if err := sim.SetFaults(simulator.AllOperations, tc.fault); err != nil {
				t.Fatal(err)
			}
			rep, _ := runScript(t, sim)
			if len(rep.Operations) == 0 {
				t.Fatal("the script reported no operation")
			}
			for _, o := range rep.Operations {
				if o.OK || o.Verified || !strings.Contains(o.Error, tc.want) {
					t.Errorf("%s: ok=%v verified=%v error %q, want not verified and an error with %q", o.Label, o.OK, o.Verified, o.Error, tc.want)
				}
			}
		})
	}
}

// startSim starts the simulator in-process over mutual TLS with a fresh development
// PKI. Instant: every status and the reply for pickup exist as soon as a delivery is
// accepted, so that each pickup call has content to validate.
func startSim(t *testing.T) *simulator.Sim {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sim, err := simulator.Start(ctx, simulator.Options{Dir: t.TempDir(), Instant: true})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = sim.Close() })
	return sim
}

// runScript runs testdata/interop.py against sim and returns its report.
func runScript(t *testing.T, sim *simulator.Sim) (report, time.Duration) {
	t.Helper()
	shared := testfixtures.Dir(t) // skips where ../shared (Logius' WSDLs and XSD) is absent
	py := python(t)
	script, err := filepath.Abs(filepath.Join("testdata", "interop.py"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := sim.Paths()
	cmd := exec.CommandContext(ctx, py, script,
		"--aanlever-url", sim.URL()+wire.Aanlever.Path,
		"--status-url", sim.URL()+wire.Statusinformatie.Path,
		"--ophaal-url", sim.URL()+wire.Ophaal.Path,
		"--cert", p.ClientCert, "--key", p.ClientKey, "--ca", p.CA, "--signing-cert", p.SigningCert,
		"--spec-dir", filepath.Join(shared, "spec"),
		"--xbrl", filepath.Join(shared, "fixtures", "omzetbelasting-2021.xbrl"),
	)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", script, err, stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("the script's report is not JSON: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return rep, time.Since(start)
}

func checkOperations(t *testing.T, ops []opRecord) {
	t.Helper()
	called := map[string]bool{}
	for _, o := range ops {
		called[o.Op] = true
		var problems []string
		if o.Error != "" {
			problems = append(problems, o.Error)
		}
		for _, c := range []struct {
			ok   bool
			what string
		}{
			{o.ZeepParsed, "zeep did not parse the answer"},
			{o.Verified, "xmlsec did not verify the signature"},
			{o.XSDValid, fmt.Sprintf("the Body payload is not valid against the XSD %v", o.XSDErrors)},
			{o.ElementOK, fmt.Sprintf("the Body holds %s, not the WSDL's output element of %s", o.Payload, o.Op)},
			{o.ActionOK, fmt.Sprintf("wsa:Action %q is not the WSDL's output action", o.Action)},
			{o.RelatesToOK, "wsa:RelatesTo is not the request's MessageID"},
		} {
			if !c.ok {
				problems = append(problems, c.what)
			}
		}
		if o.OK != (len(problems) == 0) {
			problems = append(problems, fmt.Sprintf("the script says ok=%v", o.OK))
		}
		if o.ZeepParsed && len(o.Missing) > 0 {
			problems = append(problems, fmt.Sprintf("missing %v in the answer (found %v)", o.Missing, o.Found))
		}
		if len(problems) > 0 {
			t.Errorf("%s (%s): %s", o.Label, o.Service, strings.Join(problems, "; "))
		} else {
			t.Logf("%-32s ok: %d result(s), %d ms", o.Label, o.Results, o.Milliseconds)
		}
	}
	for _, op := range allOperations {
		if !called[op] {
			t.Errorf("the script did not call %s", op)
		}
	}
}

func checkMalformed(t *testing.T, bad []badRecord) {
	t.Helper()
	cases := map[string]int{}
	for _, b := range bad {
		cases[b.Case]++
		what := fmt.Sprintf("%s %s (%s)", b.Case, b.Op, b.Service)
		if b.Error != "" {
			t.Errorf("%s: %s", what, b.Error)
			continue
		}
		if b.Case == "control" {
			// The same path without a mutation: proves the faults below are caused by
			// the mutation, not by how the script builds and signs these requests.
			if b.Fault || b.HTTPStatus != 200 {
				t.Errorf("%s: the unmutated request was refused: HTTP %d %s %s", what, b.HTTPStatus, b.Foutcode, b.Foutbeschrijving)
			}
			continue
		}
		want := faultPrefix[b.Service] + "100"
		var problems []string
		if !b.Fault {
			problems = append(problems, fmt.Sprintf("accepted (HTTP %d), want a fault %s", b.HTTPStatus, want))
		} else {
			if b.Foutcode != want {
				problems = append(problems, fmt.Sprintf("foutcode %q, want %s", b.Foutcode, want))
			}
			if b.HTTPStatus != 500 {
				problems = append(problems, fmt.Sprintf("HTTP %d, want 500 (SOAP 1.1 over HTTP)", b.HTTPStatus))
			}
			if !strings.HasSuffix(b.Faultcode, ":Client") {
				problems = append(problems, fmt.Sprintf("faultcode %q, want soapenv:Client", b.Faultcode))
			}
			if !b.DetailValid {
				problems = append(problems, fmt.Sprintf("fault detail %q is not a valid %s element %v", b.Detail, faultElem(b.Service), b.XSDErrors))
			}
			if !b.FaultActionOK {
				problems = append(problems, fmt.Sprintf("wsa:Action %q is not the WSDL's fault action of %s", b.FaultAction, b.Op))
			}
			if !b.RelatesToOK {
				problems = append(problems, "wsa:RelatesTo is not the request's MessageID")
			}
			if b.Signed {
				problems = append(problems, "the fault is signed; Digipoort's faults are not")
			}
		}
		if len(problems) > 0 {
			t.Errorf("%s: %s", what, strings.Join(problems, "; "))
		} else {
			_, why, _ := strings.Cut(b.Foutbeschrijving, "opgetreden:")
			t.Logf("%-48s refused: %s %.120s", what, b.Foutcode, strings.TrimSpace(why))
		}
	}
	for _, c := range []string{"control", "payload-without-namespace", "children-unqualified", "out-of-order", "unknown-element",
		"no-autorisatieAdres", "custom-soap-header"} {
		if cases[c] != 3 {
			t.Errorf("malformed case %s sent to %d services, want 3", c, cases[c])
		}
	}
}

func faultElem(service string) string {
	switch service {
	case "aanleverservice":
		return wire.Aanlever.FaultElem
	case "statusinformatieservice":
		return wire.Statusinformatie.FaultElem
	}
	return wire.Ophaal.FaultElem
}
