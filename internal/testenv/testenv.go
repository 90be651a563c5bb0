// Package testenv runs the real parts Koerier's integration tests need: a Temporal dev
// server (the CLI's, shared by the tests of one package, a namespace per test), a
// Postgres database per test, the Digipoort simulator over mutual TLS, and the worker
// as the service assembles it.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"google.golang.org/protobuf/types/known/durationpb"

	banksim "koerier/bank/simulator"
	"koerier/digipoort"
	"koerier/digipoort/simulator"
	"koerier/internal/config"
	"koerier/internal/secrets"
	"koerier/internal/service"
	"koerier/internal/temporalclient"
	"koerier/internal/testdb"
	"koerier/mail/devserver"
	"koerier/pipeline"
	"koerier/store"
)

// TemporalCLI finds the Temporal CLI: on PATH, or where `go install` puts it.
func TemporalCLI() (string, error) {
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	if gopath != "" {
		p := filepath.Join(gopath, "bin", "temporal")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("the Temporal CLI is not installed: run `make test` (it installs it) or `go install github.com/temporalio/cli/cmd/temporal@v1.5.1`")
}

var (
	serverOnce sync.Once
	server     *testsuite.DevServer
	serverErr  error
)

// TemporalServer starts the package's dev server on first use (in-memory, on a free
// port, with Koerier's search attributes); StopTemporal in TestMain ends it.
func TemporalServer(t testing.TB) *testsuite.DevServer {
	t.Helper()
	serverOnce.Do(func() {
		path, err := TemporalCLI()
		if err != nil {
			serverErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// One partition per task queue, as scripts/run.sh says why.
		args := []string{"--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
			"--dynamic-config-value", "matching.numTaskqueueWritePartitions=1"}
		for name, typ := range pipeline.SearchAttributeTypes() {
			args = append(args, "--search-attribute", name+"="+typ)
		}
		server, serverErr = testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
			ExistingPath: path, LogLevel: "error", ExtraArgs: args,
			ClientOptions: &client.Options{HostPort: "", Logger: temporalclient.Logger{L: quiet()}},
			Stdout:        io.Discard, Stderr: io.Discard,
		})
	})
	if serverErr != nil {
		t.Fatalf("Temporal dev server: %v", serverErr)
	}
	return server
}

// StopTemporal stops the dev server if this package started one.
func StopTemporal() {
	if server != nil {
		_ = server.Stop()
	}
}

// Main runs a package's tests and then stops the dev server they started, if any:
// without it every test run leaves one running. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	StopTemporal()
	os.Exit(code)
}

// Quiet is a logger that keeps tests' output clean.
func Quiet() logrus.FieldLogger { return quiet() }

func quiet() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// Namespace registers a fresh namespace, so tests sharing a server never see each
// other's workflows (message numbers restart at 1000001 in every test database).
func Namespace(t testing.TB, srv *testsuite.DevServer) string {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	ns := "test-" + hex.EncodeToString(b)
	nc, err := client.NewNamespaceClient(client.Options{HostPort: srv.FrontendHostPort(), Logger: temporalclient.Logger{L: quiet()}})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Register(context.Background(), &workflowservice.RegisterNamespaceRequest{Namespace: ns,
		WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)}); err != nil {
		t.Fatalf("register namespace %s: %v", ns, err)
	}
	return ns
}

// StackOptions tune a stack.
type StackOptions struct {
	// SimStep is the simulator's time between two statuses; 0 means 20ms.
	SimStep time.Duration
	// NoWorker leaves the worker out (a test starts its own, e.g. a process).
	NoWorker bool
	// Env adds configuration, as KOERIER_* variables would.
	Env map[string]string
	// Mail starts the local mail server (mail/devserver) over TLS, as `make run` does,
	// and sets KOERIER_DEV_SMTP, KOERIER_DEV_IMAP, KOERIER_DEV_MAIL_PASSWORD and
	// KOERIER_MAIL_CA_FILE for `starter environments add --local-mail`.
	Mail bool
	// Bank starts the bank simulator (bank/simulator) as `make run` does, and sets
	// KOERIER_DEV_BANK and KOERIER_DEV_BANK_CONTROL for `--local-bank`.
	Bank bool
}

// Stack is a running Koerier with everything it talks to.
type Stack struct {
	T         testing.TB
	Server    *testsuite.DevServer
	Namespace string
	Temporal  client.Client
	Sim       *simulator.Sim
	Store     *store.Store
	Worker    *service.Worker
	Config    config.Config
	Digipoort digipoort.Config
	DBURL     string
	SimDir    string
	// Mail is the local mail server (StackOptions.Mail), nil otherwise.
	Mail *devserver.Server
	// Bank is the bank simulator (StackOptions.Bank), nil otherwise.
	Bank *banksim.Sim
}

// SimDir is a development PKI shared by the tests of a package (generating RSA keys
// takes a moment).
var (
	simDirOnce sync.Once
	simDir     string
)

func sharedSimDir() string {
	simDirOnce.Do(func() {
		d, err := os.MkdirTemp("", "koerier-sim-")
		if err == nil {
			simDir = d
		}
	})
	return simDir
}

// NewStack starts the simulator and (unless told not to) a worker against a fresh
// database and namespace.
func NewStack(t testing.TB, opts StackOptions) *Stack {
	t.Helper()
	srv := TemporalServer(t)
	s := &Stack{T: t, Server: srv, Namespace: Namespace(t, srv), DBURL: testdb.New(t), SimDir: sharedSimDir()}
	step := opts.SimStep
	if step == 0 {
		step = 20 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := simulator.Start(ctx, simulator.Options{Dir: s.SimDir, StepInterval: step, Seed: 1})
	if err != nil {
		t.Fatalf("start Digipoort simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	s.Sim = sim
	if s.Digipoort, err = sim.ClientConfig(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"KOERIER_DATABASE_URL":            s.DBURL,
		"KOERIER_TEMPORAL_ADDRESS":        srv.FrontendHostPort(),
		"KOERIER_TEMPORAL_NAMESPACE":      s.Namespace,
		"KOERIER_BERICHTSOORTEN":          "ib=IB,vpb=VPB,kvk=KVK",
		"KOERIER_UNCERTAIN_DELIVERY_WAIT": "2s",
		"KOERIER_SEND_WAIT":               "30s",
	}
	// Every stack can keep e-mail passwords; the key is the test's own.
	env["KOERIER_SECRET_KEY"] = secrets.NewKey()
	if opts.Mail {
		s.startMail(env)
	}
	if opts.Bank {
		bs, err := banksim.Start(ctx, banksim.Options{Dir: t.TempDir(), Step: 50 * time.Millisecond, Poll: 50 * time.Millisecond, Log: quiet()})
		if err != nil {
			t.Fatalf("start the bank simulator: %v", err)
		}
		t.Cleanup(func() { bs.Close() })
		s.Bank = bs
		env["KOERIER_DEV_BANK"] = bs.Addr()
		env["KOERIER_DEV_BANK_CONTROL"] = bs.ControlURL()
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	if s.Config, err = config.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	for _, kv := range append(sim.Env(), envList(env)...) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	if s.Store, err = store.Open(context.Background(), s.DBURL, store.Options{Migrate: true, Catalog: &s.Config.Catalog,
		AanleverkenmerkPrefix: s.Config.AanleverkenmerkPrefix, Secrets: s.Config.Secrets}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Store.Close() })
	if s.Temporal, err = temporalclient.Dial(context.Background(), srv.FrontendHostPort(), s.Namespace, quiet()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Temporal.Close)
	if !opts.NoWorker {
		s.StartWorker()
	}
	return s
}

// startMail starts the local mail server over TLS, with its own CA, and puts what the
// command line and the worker need to use it into env.
func (s *Stack) startMail(env map[string]string) {
	t := s.T
	t.Helper()
	certs, err := devserver.EnsureCerts(t.TempDir())
	if err != nil {
		t.Fatalf("mail server certificates: %v", err)
	}
	tlsConfig, err := certs.ServerTLS()
	if err != nil {
		t.Fatal(err)
	}
	password := hex.EncodeToString(randomBytes(t, 12))
	srv, err := devserver.Start(devserver.Config{Password: password, SMTPAddr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0", WebAddr: "127.0.0.1:0",
		TLS: tlsConfig, BounceDelay: 200 * time.Millisecond, Log: quiet()})
	if err != nil {
		t.Fatalf("start the local mail server: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	s.Mail = srv
	env["KOERIER_DEV_SMTP"] = srv.SMTPAddr()
	env["KOERIER_DEV_IMAP"] = srv.IMAPAddr()
	env["KOERIER_DEV_MAIL_PASSWORD"] = password
	env["KOERIER_DEV_MAIL_WEB"] = srv.WebURL()
	env["KOERIER_MAIL_CA_FILE"] = certs.CAFile
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// StartWorker starts an in-process worker; the test's cleanup stops it.
func (s *Stack) StartWorker() *service.Worker {
	s.T.Helper()
	w, err := service.Start(context.Background(), s.Config, s.Digipoort, quiet())
	if err != nil {
		s.T.Fatalf("start worker: %v", err)
	}
	s.Worker = w
	s.T.Cleanup(w.Stop)
	return w
}

func envList(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// Eventually polls cond until it holds or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s (last: %s)", what, timeout, last)
}
