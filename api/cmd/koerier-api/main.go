// Command koerier-api is the environments' HTTP API (package api): it connects to
// Postgres (applying the migrations, as the worker does) and to Temporal, and serves
// on KOERIER_API_ADDR (default 127.0.0.1:8080) until SIGINT or SIGTERM. It keeps no
// state of its own, so several can run behind a load balancer.
//
// It reads internal/config like the worker; its one setting of its own, KOERIER_API_ADDR
// (or -addr), is read here, as the Digipoort client reads its KOERIER_DIGIPOORT_* itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"go.temporal.io/sdk/client"

	"koerier/api"
	"koerier/internal/config"
	"koerier/internal/metrics"
	"koerier/internal/service"
	"koerier/internal/temporalclient"
	"koerier/store"
)

// DefaultAddr is where the API listens unless told otherwise: this machine only, as
// `make run` starts it; a deployment sets KOERIER_API_ADDR (docker compose: 0.0.0.0:8080).
const DefaultAddr = "127.0.0.1:8080"

func main() {
	log := logrus.New()
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	addr := flag.String("addr", "", "address to listen on (default $KOERIER_API_ADDR, else "+DefaultAddr+"); port 0 picks a free port")
	flag.Parse()
	if err := run(log, *addr); err != nil {
		log.WithError(err).Error("api stopped")
		fmt.Fprintln(os.Stderr, "koerier-api:", err)
		os.Exit(1)
	}
}

func run(log *logrus.Logger, addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	log.SetLevel(cfg.LogLevel)
	if addr == "" {
		addr = os.Getenv("KOERIER_API_ADDR")
	}
	if addr == "" {
		addr = DefaultAddr
	}
	if _, err := store.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Migrate: true, Catalog: &cfg.Catalog, MaxConns: cfg.DBMaxConns,
		AanleverkenmerkPrefix: cfg.AanleverkenmerkPrefix, Secrets: cfg.Secrets})
	if err != nil {
		return err
	}
	defer st.Close()
	// Lazy: the API starts, and queues, while Temporal is away; a workflow that cannot
	// be started now is started by the next send/receive, and a process call answers
	// 503 until Temporal is back.
	// The API's /metrics: the Go runtime's, the process's and its Temporal client's
	// figures. The backlog read from Postgres is the worker's to serve (once is enough).
	m := metrics.New()
	tc, err := client.NewLazyClient(client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.Namespace, Logger: temporalclient.Logger{L: log},
		MetricsHandler: m.Temporal()})
	if err != nil {
		return fmt.Errorf("the Temporal client for %s (namespace %s): %w; check KOERIER_TEMPORAL_ADDRESS", cfg.TemporalAddress, cfg.Namespace, err)
	}
	defer tc.Close()
	srv := &api.Server{
		Store:     st,
		Workflows: service.Starter(cfg, tc),
		Catalog:   cfg.Catalog,
		Log:       log,
		Health:    func(ctx context.Context) error { return st.DB().PingContext(ctx) },
		Metrics:   m.Handler(log),
		// An environment that sets its profile through the API gets (or loses) its
		// e-mail send/receive schedule at once, as `starter environments set` does.
		MailSchedule: func(ctx context.Context, env string, mailbox bool) error {
			_, err := service.ApplyMailSchedule(ctx, tc, cfg, env, mailbox)
			return err
		},
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w; set KOERIER_API_ADDR to a free host:port", addr, err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// A 64 MiB upload over a slow line takes minutes; a stalled one must not hold
		// the connection forever.
		ReadTimeout:    5 * time.Minute,
		WriteTimeout:   6 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	log.WithFields(logrus.Fields{"addr": ln.Addr().String(), "temporal": cfg.TemporalAddress, "namespace": cfg.Namespace}).
		Info("koerier API listening")
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("stopping: finishing requests in progress")
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}
