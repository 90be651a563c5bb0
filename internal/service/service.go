// Package service assembles Koerier's worker from configuration: the store, the
// Digipoort client, the Temporal client, the workflows and activities, and the
// schedules. worker/ runs it as a process; tests run the same assembly in-process.
package service

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"koerier/activities"
	"koerier/digipoort"
	"koerier/internal/config"
	"koerier/internal/metrics"
	"koerier/internal/temporalclient"
	"koerier/pipeline"
	"koerier/store"
	"koerier/workflows"
)

// Activities builds the activities from their parts.
func Activities(cfg config.Config, st *store.Store, dp activities.Digipoort, tc client.Client, log logrus.FieldLogger) *activities.Activities {
	acts := &activities.Activities{Store: st, Digipoort: dp, Log: log, Config: activities.Config{
		Starter: Starter(cfg, tc), Rol: cfg.Rol, UncertainWait: cfg.UncertainWait, Parallel: cfg.Parallel, MailRootCAs: cfg.MailRootCAs,
	}}
	if c, ok := dp.(interface {
		Certificates() digipoort.CertificateReport
	}); ok {
		acts.Config.Certificates = c.Certificates
	}
	return acts
}

// Starter starts and signals declaration workflows as the configuration says.
func Starter(cfg config.Config, tc pipeline.Client) pipeline.Starter {
	return pipeline.Starter{Client: tc, TaskQueue: cfg.TaskQueue, NoReplyTimeout: cfg.NoReplyTimeout, DeliveryDeadline: cfg.DeliveryDeadline,
		WebhookRetryInitial: cfg.WebhookRetryInitial, BounceWindow: cfg.BounceWindow}
}

// Register puts Koerier's workflows and activities on a worker.
func Register(w worker.Registry, acts *activities.Activities) {
	w.RegisterWorkflowWithOptions(workflows.DeclarationWorkflow, workflow.RegisterOptions{Name: pipeline.DeclarationWorkflowType})
	w.RegisterWorkflowWithOptions(workflows.CompactDeclarationWorkflow, workflow.RegisterOptions{Name: pipeline.CompactDeclarationWorkflowType})
	w.RegisterWorkflowWithOptions(workflows.SendReceiveWorkflow, workflow.RegisterOptions{Name: pipeline.SendReceiveWorkflowType})
	w.RegisterWorkflowWithOptions(workflows.CleanupWorkflow, workflow.RegisterOptions{Name: pipeline.CleanupWorkflowType})
	w.RegisterWorkflowWithOptions(workflows.CertificateCheckWorkflow, workflow.RegisterOptions{Name: pipeline.CertificateCheckWorkflowType})
	w.RegisterWorkflowWithOptions(workflows.UnknownReplyWorkflow, workflow.RegisterOptions{Name: pipeline.UnknownReplyWorkflowType})
	w.RegisterWorkflowWithOptions(workflows.MailSendReceiveWorkflow, workflow.RegisterOptions{Name: pipeline.MailSendReceiveWorkflowType})
	w.RegisterWorkflowWithOptions(workflows.BankSendReceiveWorkflow, workflow.RegisterOptions{Name: pipeline.BankSendReceiveWorkflowType})
	w.RegisterActivity(acts)
}

// Worker is a running Koerier worker with what it holds open.
type Worker struct {
	Store     *store.Store
	Temporal  client.Client
	Digipoort *digipoort.Client
	// Metrics is what the worker serves on /metrics (worker/main.go serves
	// Metrics.Handler on KOERIER_METRICS_ADDR; tests scrape it directly).
	Metrics *metrics.Metrics
	workers []worker.Worker
}

// Start connects everything and starts polling; Stop ends it. Migrations are applied
// first, and the search attributes registered, so a fresh database and namespace work.
func Start(ctx context.Context, cfg config.Config, dcfg digipoort.Config, log logrus.FieldLogger) (*Worker, error) {
	if _, err := store.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Migrate: true, Catalog: &cfg.Catalog, MaxConns: cfg.DBMaxConns,
		AanleverkenmerkPrefix: cfg.AanleverkenmerkPrefix, Secrets: cfg.Secrets})
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	m.WatchStore(st, metrics.DefaultStoreTimeout, log)
	if dcfg.Observe == nil {
		dcfg.Observe = m.ObserveDigipoort
	}
	dp, err := digipoort.New(dcfg)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("digipoort client: %w", err)
	}
	m.WatchCertificates(dp.Certificates)
	tc, err := temporalclient.DialWithMetrics(ctx, cfg.TemporalAddress, cfg.Namespace, log, m.Temporal())
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := temporalclient.EnsureSearchAttributes(ctx, tc, cfg.Namespace); err != nil {
		tc.Close()
		st.Close()
		return nil, err
	}
	// Bounds the worker's memory (config.DefaultStickyCacheSize says why). The SDK
	// keeps one cache per process, created with the first worker: later calls in the
	// same process (tests that start several workers) change nothing.
	worker.SetStickyWorkflowCacheSize(cfg.StickyCacheSize)
	acts := Activities(cfg, st, dp, tc, log)
	acts.Metrics = m
	// One worker per queue, each with everything registered: the declarations' queue
	// and the control queue of the runs (pipeline.ControlQueue says why they differ).
	var ws []worker.Worker
	for _, q := range []struct {
		queue      string
		activities int
	}{{cfg.TaskQueue, cfg.WorkerActivities}, {pipeline.ControlQueue(cfg.TaskQueue), cfg.ControlActivities}} {
		w := worker.New(tc, q.queue, WorkerOptions(q.activities))
		Register(w, acts)
		if err := w.Start(); err != nil {
			for _, started := range ws {
				started.Stop()
			}
			tc.Close()
			st.Close()
			return nil, fmt.Errorf("start worker on task queue %s: %w", q.queue, err)
		}
		ws = append(ws, w)
	}
	return &Worker{Store: st, Temporal: tc, Digipoort: dp, Metrics: m, workers: ws}, nil
}

// activityPollers is how many activity polls a worker keeps open (WorkerOptions says why).
const activityPollers = 8

// WorkerOptions are the options of Koerier's workers (the benchmark's floors use them
// too, so that they compare like with like): at most activities at once.
func WorkerOptions(activities int) worker.Options {
	return worker.Options{
		MaxConcurrentActivityExecutionSize: activities,
		// On a busy machine a workflow task can wait a few seconds for the worker that
		// has its history cached; sending it elsewhere means replaying it all.
		StickyScheduleToStartTimeout: 15 * time.Second,
		// Workflow pollers that scale and keep a poll open on the normal queue. With a
		// fixed number (the SDK's default of two, and eight), every poller stays on the
		// sticky queue while it has a backlog, and a task that timed out there waits
		// unpolled on the normal queue as long as the burst lasts: 219 declarations of a
		// benchmark of 1,000 stood still for over a minute with two, and some of 10,000
		// for seven minutes with eight.
		WorkflowTaskPollerBehavior: worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{}),
		// A fixed number of activity pollers: scaling ones left activity tasks unpolled
		// for up to 23 s with every core idle whenever the load fell (5 of 6 runs).
		ActivityTaskPollerBehavior: worker.NewPollerBehaviorSimpleMaximum(worker.PollerBehaviorSimpleMaximumOptions{MaximumNumberOfPollers: activityPollers}),
	}
}

// Stop stops polling, lets running activities finish, and closes connections.
func (w *Worker) Stop() {
	for _, ww := range w.workers {
		ww.Stop()
	}
	w.Temporal.Close()
	w.Digipoort.Close()
	w.Store.Close()
}
