// Command digipoort-simulator runs a local Digipoort (WUS 2.0, koppelvlak 1.2) for
// development and tests: the three services over mutual TLS, status flows chosen by
// aanleverkenmerk, and a control API. See package koerier/digipoort/simulator.
//
//	go run ./digipoort/cmd/digipoort-simulator [flags]
//
// On start it prints the KOERIER_DIGIPOORT_* lines a client needs. SIGINT/SIGTERM
// stop it gracefully.
package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"koerier/digipoort"
	"koerier/digipoort/simulator"
	"koerier/digipoort/wsse"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "digipoort-simulator:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// run serves until ctx ends (SIGINT/SIGTERM in main).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("digipoort-simulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("KOERIER_SIM_ADDR", "127.0.0.1:8443"), "HTTPS (mutual TLS) listen address of the WUS services [KOERIER_SIM_ADDR]")
	ctlAddr := fs.String("control-addr", envOr("KOERIER_SIM_CONTROL_ADDR", "127.0.0.1:8444"),
		"plain-HTTP listen address of the control API; keep it on loopback [KOERIER_SIM_CONTROL_ADDR]")
	dir := fs.String("dir", simulator.DefaultDir(), "directory of the development CA and certificates, created on first start [KOERIER_SIM_DIR]")
	stepDefault := time.Second
	if v := os.Getenv("KOERIER_SIM_STEP"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("KOERIER_SIM_STEP=%q is not a Go duration (e.g. 1s, 50ms)", v)
		}
		stepDefault = d
	}
	step := fs.Duration("step", stepDefault, "time between two statuses of a delivery [KOERIER_SIM_STEP]")
	instant := fs.Bool("instant", false, "make every status of a delivery available at once (default mode only)")
	realisticDefault := false
	if v := os.Getenv("KOERIER_SIM_REALISTIC"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("KOERIER_SIM_REALISTIC=%q is not a boolean (true, false, 1, 0)", v)
		}
		realisticDefault = b
	}
	realistic := fs.Bool("realistic", realisticDefault,
		"start in realistic mode: no aanleverkenmerk in pickups, flows of minutes, a repeated delivery is a second process [KOERIER_SIM_REALISTIC]")
	scaleDefault := 1.0
	if v := os.Getenv("KOERIER_SIM_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("KOERIER_SIM_SCALE=%q is not a number (e.g. 0.01)", v)
		}
		scaleDefault = f
	}
	scale := fs.Float64("scale", scaleDefault, "fraction of real time the realistic flows take, in (0, 1]: 0.01 = 100 times faster [KOERIER_SIM_SCALE]")
	overloadAttempts := fs.Int("overload-attempts", 2, "requests the Overbelast* scenarios refuse before succeeding")
	overloadWindow := fs.Duration("overload-window", 0, "how long the Zwaarbelast* scenarios refuse requests (default 3 × step)")
	seed := fs.Uint64("seed", 1, "seed of the fault-injection randomness")
	sig := fs.String("signature", "rsa-sha1", "algorithm the responses are signed with: rsa-sha1 or rsa-sha256")
	clientCA := fs.String("client-ca", os.Getenv("KOERIER_SIM_CLIENT_CA"),
		"PEM bundle of the CAs a client certificate must chain to, as Digipoort takes only PKIoverheid ones "+
			"(default: the development CA in -dir) [KOERIER_SIM_CLIENT_CA]")
	persistDefault := true
	if v := os.Getenv("KOERIER_SIM_PERSIST"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("KOERIER_SIM_PERSIST=%q is not a boolean (true, false, 1, 0)", v)
		}
		persistDefault = b
	}
	persist := fs.Bool("persist", persistDefault, "keep the processes in -dir ("+simulator.StateFile+") across restarts, as Digipoort keeps its "+
		"processes; -persist=false starts empty each time [KOERIER_SIM_PERSIST]")
	verbose := fs.Bool("v", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	alg, err := wsse.ParseAlgorithm(*sig)
	if err != nil {
		return err
	}
	log := logrus.New()
	log.SetOutput(stderr)
	if *verbose {
		log.SetLevel(logrus.DebugLevel)
	}
	for _, a := range []string{*addr, *ctlAddr} {
		if host, _, err := net.SplitHostPort(a); err == nil {
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				log.Warnf("listening on %s, which is not a loopback address: the control API is not authenticated", a)
			}
		}
	}

	if *scale <= 0 || *scale > 1 {
		return fmt.Errorf("-scale %v: must be greater than 0 and at most 1 (1 = real time, 0.01 = 100 times faster)", *scale)
	}
	var clientCAs *x509.CertPool
	clientCAsLine := "the development CA (" + filepath.Join(*dir, "ca.pem") + ")"
	if *clientCA != "" {
		if clientCAs, err = digipoort.LoadCertPool(*clientCA); err != nil {
			return fmt.Errorf("-client-ca %s: %w (give a PEM file with the CA certificates client certificates must chain to)", *clientCA, err)
		}
		clientCAsLine = *clientCA
	}

	sim, err := simulator.Start(ctx, simulator.Options{
		Addr: *addr, ControlAddr: *ctlAddr, Dir: *dir, StepInterval: *step, Instant: *instant,
		OverloadAttempts: *overloadAttempts, OverloadWindow: *overloadWindow, Seed: *seed,
		ResponseAlgorithm: alg, Logger: log, Mode: simulator.Mode{Realistic: *realistic, Scale: *scale}, ClientCAs: clientCAs,
		Persist: *persist,
	})
	if err != nil {
		return err
	}
	p := sim.Paths()
	fmt.Fprintf(stdout, `Digipoort simulator
  WUS services:  %s/wus/2.0/{aanleverservice,statusinformatieservice,ophaalservice}/1.2
  control API:   %s/sim/  (mode, deliveries, calls, scenarios, pickups, faults, reset)
  mode:          %s
  certificates:  %s
  processes:     %s
  client CAs:    %s (other client certificates fail the TLS handshake)

Environment for a client (PEM):
%s

or with the PKCS#12 client certificate:
  export KOERIER_DIGIPOORT_CLIENT_PFX=%s
  export KOERIER_DIGIPOORT_CLIENT_PFX_PASSWORD=%s
  (unset KOERIER_DIGIPOORT_CLIENT_CERT and KOERIER_DIGIPOORT_CLIENT_KEY then)

Scenarios by aanleverkenmerk (name or name-prefix, case-insensitive): %s
`, sim.URL(), sim.ControlURL(), modeLine(sim), p.Dir, keptLine(*persist, p.Dir), clientCAsLine, exportLines(sim.Env()),
		shellQuote(p.ClientPFX), shellQuote(p.ClientPFXPassword), scenarioNames())

	<-sim.Done()
	return sim.Close()
}

// modeLine says which mode the simulator is in and how long a happy flow takes.
func modeLine(sim *simulator.Sim) string {
	m := sim.Mode()
	flow := sim.FlowDuration(simulator.Happyflow)
	if !m.Realistic {
		return fmt.Sprintf("default (a happy flow takes %s; repeats de-duplicated; PUT /sim/mode {\"realistic\": true} to switch)", flow)
	}
	return fmt.Sprintf("realistic, scale %g (a happy flow takes %s; repeats are new processes; no aanleverkenmerk in pickups)", m.Scale, flow)
}

func exportLines(env []string) string {
	var b strings.Builder
	for i, l := range env {
		if i > 0 {
			b.WriteString("\n")
		}
		k, v, _ := strings.Cut(l, "=")
		b.WriteString("  export " + k + "=" + shellQuote(v))
	}
	return b.String()
}

func scenarioNames() string {
	join := func(scs []simulator.Scenario) string {
		names := make([]string, len(scs))
		for i, s := range scs {
			names[i] = string(s)
		}
		return strings.Join(names, ", ")
	}
	return join(simulator.LogiusScenarios()) + "; the simulator's own (not in Logius' conformance environment): " +
		join(simulator.KoerierScenarios())
}

// shellQuote quotes a value for a POSIX shell when it needs it.
func shellQuote(v string) string {
	if v != "" && strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:+=@,", r))
	}) < 0 {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// keptLine says where the processes are kept, or that they are not.
func keptLine(persist bool, dir string) string {
	if !persist {
		return "not kept (-persist=false): a restart forgets every kenmerk"
	}
	return "kept in " + filepath.Join(dir, simulator.StateFile) + " across restarts (-persist=false: not)"
}
