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
	"koerier/internal/service"
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

// MinFloorWorkflow is the least a durable declaration can cost: one activity (the
// delivery) and one signal (the final reply). Anything Koerier does beyond it is
// what its shape costs, which the floor of the same shape (FloorWorkflow) does not show.
func MinFloorWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	if err := workflow.ExecuteActivity(ctx, FloorActivity).Get(ctx, nil); err != nil {
		return err
	}
	workflow.GetSignalChannel(ctx, "floor").Receive(ctx, nil)
	return nil
}

// floorSpec says which floor to run: its name (task queue and workflow ids), the
// workflow with its type name and arguments, and how many signals each one takes.
type floorSpec struct {
	name     string
	workflow any
	typeName string
	args     []any
	signals  int
}

// floorResult is one floor's rate and, from its histories, what each workflow
// costs: the same figures as Koerier's declarations, so that the ratios compare.
type floorResult struct {
	perS    float64
	took    time.Duration
	events  float64
	actions float64
}

// runFloor starts opts.N floor workflows on a task queue of their own, signals each
// spec.signals times, waits until all have completed, and reads their histories.
func runFloor(ctx context.Context, tc client.Client, cfg config.Config, opts Options, tag string, spec floorSpec) (floorResult, error) {
	queue := "koerier-" + spec.name + "-" + tag
	w := worker.New(tc, queue, service.WorkerOptions(cfg.WorkerActivities))
	w.RegisterWorkflow(spec.workflow)
	w.RegisterActivity(FloorActivity)
	if err := w.Start(); err != nil {
		return floorResult{}, err
	}
	defer w.Stop()
	start := time.Now()
	ids := make([]string, opts.N)
	err := parallel(ctx, opts.N, opts.Concurrency, func(i int) error {
		ids[i] = fmt.Sprintf("%s-%s-%d", spec.name, tag, i)
		_, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: ids[i], TaskQueue: queue}, spec.workflow, spec.args...)
		return err
	})
	if err != nil {
		return floorResult{}, err
	}
	err = parallel(ctx, opts.N*spec.signals, opts.Concurrency, func(i int) error {
		return tc.SignalWorkflow(ctx, ids[i%opts.N], "", "floor", nil)
	})
	if err != nil {
		return floorResult{}, err
	}
	query := fmt.Sprintf(`TaskQueue = %q`, queue)
	for {
		resp, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: cfg.Namespace,
			Query: query + ` AND ExecutionStatus = "Completed"`})
		if err != nil {
			return floorResult{}, err
		}
		if resp.Count >= int64(opts.N) {
			break
		}
		select {
		case <-ctx.Done():
			return floorResult{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	took := time.Since(start)
	res := floorResult{perS: float64(opts.N) / took.Seconds(), took: took}
	figs, err := listFigures(ctx, tc, cfg.Namespace, []string{query}, sampleSize, spec.typeName)
	if err != nil {
		return res, err
	}
	f := figs[spec.typeName]
	if f == nil {
		f = &workflowFigures{}
	}
	if f.Workflows != opts.N {
		return res, fmt.Errorf("visibility lists %d %s workflows on task queue %s, want %d", f.Workflows, spec.typeName, queue, opts.N)
	}
	res.events, res.actions = f.EventsPer(), f.ActionsPer()
	return res, nil
}
