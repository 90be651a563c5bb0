// Command bank-simulator runs a local bank host-to-host endpoint for
// development and tests: SFTP with public-key login, pain.001 payment files
// consumed from upload/, pain.002 status reports written to download/, and a
// control API. See package koerier/bank/simulator.
//
//	go run ./bank/cmd/bank-simulator [-dir D] [-addr 127.0.0.1:2222] [-control-addr 127.0.0.1:2223]
//
// On start it prints the SFTP address, the control URL and the host key (as an
// authorized_keys line and as a SHA256 fingerprint) a client pins. Users are
// registered through the control API:
//
//	curl -d '{"user":"demo","public_key":"ssh-ed25519 AAAA…"}' http://127.0.0.1:2223/control/users
//
// SIGINT/SIGTERM stop it; users, MsgIds seen and reports not yet written are
// kept in -dir for the next start.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"koerier/bank/simulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bank-simulator:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a Go duration (e.g. 300ms, 2s)", name, v)
	}
	return d, nil
}

// run serves until ctx ends (SIGINT/SIGTERM in main).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bank-simulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", simulator.DefaultDir(), "directory of the host key, the users' folders and the kept state, created on first start ["+simulator.EnvDir+"]")
	addr := fs.String("addr", envOr("KOERIER_BANK_SIM_ADDR", "127.0.0.1:2222"), "SFTP (SSH) listen address [KOERIER_BANK_SIM_ADDR]")
	ctlAddr := fs.String("control-addr", envOr("KOERIER_BANK_SIM_CONTROL_ADDR", "127.0.0.1:2223"),
		"plain-HTTP listen address of the control API; keep it on loopback [KOERIER_BANK_SIM_CONTROL_ADDR]")
	stepDefault, err := envDuration("KOERIER_BANK_SIM_STEP", 300*time.Millisecond)
	if err != nil {
		return err
	}
	step := fs.Duration("step", stepDefault, "time between two status reports of a file [KOERIER_BANK_SIM_STEP]")
	poll := fs.Duration("poll", 200*time.Millisecond, "how often the upload folders are looked at")
	verbose := fs.Bool("v", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
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

	sim, err := simulator.Start(ctx, simulator.Options{Dir: *dir, Addr: *addr, ControlAddr: *ctlAddr, Poll: *poll, Step: *step, Log: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sftp %s\ncontrol %s\nhost-key %s\nfingerprint %s\ndir %s\n",
		sim.Addr(), sim.ControlURL(), sim.HostKey(), sim.Fingerprint(), sim.Dir())
	<-sim.Done()
	return sim.Close()
}
