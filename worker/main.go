// Command worker is Koerier's Temporal worker: it connects to Postgres (applying the
// migrations), Digipoort and Temporal, registers the workflows and activities, serves
// Prometheus metrics on KOERIER_METRICS_ADDR (/metrics), and runs until SIGINT or
// SIGTERM.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"koerier/digipoort"
	"koerier/internal/config"
	"koerier/internal/metrics"
	"koerier/internal/service"
	"koerier/pipeline"
)

func main() {
	log := logrus.New()
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	if err := run(log); err != nil {
		log.WithError(err).Error("worker stopped")
		fmt.Fprintln(os.Stderr, "koerier worker:", err)
		os.Exit(1)
	}
}

func run(log *logrus.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	log.SetLevel(cfg.LogLevel)
	dcfg, err := digipoort.ConfigFromEnv()
	if err != nil {
		return err
	}
	// Listened on before anything is connected: a port already taken stops the worker
	// at once with what to do.
	var ln net.Listener
	if cfg.MetricsAddr != "" {
		if ln, err = metrics.Listen(cfg.MetricsAddr); err != nil {
			return err
		}
		defer ln.Close()
	}
	w, err := service.Start(ctx, cfg, dcfg, log)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	if ln != nil {
		go func() { served <- metrics.Serve(ctx, ln, w.Metrics.Handler(log)) }()
		log.WithField("addr", ln.Addr().String()).Info("serving metrics on /metrics")
	}
	log.WithFields(logrus.Fields{"temporal": cfg.TemporalAddress, "namespace": cfg.Namespace, "task_queue": cfg.TaskQueue, "control_queue": pipeline.ControlQueue(cfg.TaskQueue)}).Info("koerier worker running")
	var stopErr error
	select {
	case <-ctx.Done():
	case stopErr = <-served:
		// The metrics server died under the worker: stop rather than run unwatched.
	}
	log.Info("stopping: finishing running activities")
	w.Stop()
	return stopErr
}
