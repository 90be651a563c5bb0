package bench

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"koerier/internal/config"
)

// FloorInput shapes one floor workflow like an average declaration.
type FloorInput struct {
	Activities int
	Signals    int
}

// FloorWorkflow does nothing but what every declaration must do at least: run as
// many activities and take as many signals. Half the activities come before the
// signals, half after, as a declaration delivers, waits for replies, then processes
// and reports.
func FloorWorkflow(ctx workflow.Context, in FloorInput) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	before := in.Activities / 2
	for i := 0; i < before; i++ {
		if err := workflow.ExecuteActivity(ctx, FloorActivity).Get(ctx, nil); err != nil {
			return err
		}
	}
	ch := workflow.GetSignalChannel(ctx, "floor")
	for i := 0; i < in.Signals; i++ {
		ch.Receive(ctx, nil)
	}
	for i := before; i < in.Activities; i++ {
		if err := workflow.ExecuteActivity(ctx, FloorActivity).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// FloorActivity does nothing.
func FloorActivity(context.Context) error { return nil }

// runFloor starts n floor workflows on a task queue of their own, signals each
// `signals` times, and waits until all have completed; it returns workflows per second.
func runFloor(ctx context.Context, tc client.Client, cfg config.Config, opts Options, acts, signals int, tag string) (float64, time.Duration, error) {
	queue := "koerier-floor-" + tag
	w := worker.New(tc, queue, worker.Options{MaxConcurrentActivityExecutionSize: cfg.WorkerActivities})
	w.RegisterWorkflow(FloorWorkflow)
	w.RegisterActivity(FloorActivity)
	if err := w.Start(); err != nil {
		return 0, 0, err
	}
	defer w.Stop()
	start := time.Now()
	ids := make([]string, opts.N)
	err := parallel(ctx, opts.N, opts.Concurrency, func(i int) error {
		ids[i] = fmt.Sprintf("floor-%s-%d", tag, i)
		_, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: ids[i], TaskQueue: queue}, FloorWorkflow, FloorInput{Activities: acts, Signals: signals})
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	err = parallel(ctx, opts.N*signals, opts.Concurrency, func(i int) error {
		return tc.SignalWorkflow(ctx, ids[i%opts.N], "", "floor", nil)
	})
	if err != nil {
		return 0, 0, err
	}
	for {
		resp, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: cfg.Namespace,
			Query: fmt.Sprintf(`TaskQueue = %q AND ExecutionStatus = "Completed"`, queue)})
		if err != nil {
			return 0, 0, err
		}
		if resp.Count >= int64(opts.N) {
			break
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	took := time.Since(start)
	return float64(opts.N) / took.Seconds(), took, nil
}
