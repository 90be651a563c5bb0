// Command worker is Koerier's Temporal worker: it connects to Postgres (applying the
// migrations), Digipoort and Temporal, registers the workflows and activities, and
// runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"koerier/digipoort"
	"koerier/internal/config"
	"koerier/internal/service"
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
	w, err := service.Start(ctx, cfg, dcfg, log)
	if err != nil {
		return err
	}
	log.WithFields(logrus.Fields{"temporal": cfg.TemporalAddress, "namespace": cfg.Namespace, "task_queue": cfg.TaskQueue}).Info("koerier worker running")
	<-ctx.Done()
	log.Info("stopping: finishing running activities")
	w.Stop()
	return nil
}
