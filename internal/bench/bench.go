// Package bench measures Koerier end to end against running services (those `make run`
// starts): it queues N declarations across M environments, runs send/receive until all
// are final, and reports throughput, latency, Digipoort calls, Temporal history,
// worker memory and database growth — and, on the same Temporal server, the floor: a
// minimal workflow with the same number of activities and signals per declaration.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"koerier/domain"
	"koerier/internal/config"
	"koerier/internal/demo"
	"koerier/internal/service"
	"koerier/pipeline"
	"koerier/store"
)

// Options say what to measure against.
type Options struct {
	N    int
	Envs int
	// SimControlURL is the simulator's control API (its call and delivery counts).
	SimControlURL string
	// WorkerPID is the worker process whose peak RSS is reported; 0 means none known.
	WorkerPID int
	// Timeout bounds the whole run; 0 means 30 minutes.
	Timeout time.Duration
	// NoFloor skips the floor measurement.
	NoFloor bool
	// Concurrency of queueing and of the floor's starts and signals; 0 means 16.
	Concurrency int
	Progress    io.Writer
}

// Result is what the benchmark prints; --json prints it as one object.
type Result struct {
	Declarations             int     `json:"declarations"`
	Environments             int     `json:"environments"`
	ThroughputPerS           float64 `json:"throughput_per_s"`
	FloorPerS                float64 `json:"floor_per_s"`
	RatioToFloor             float64 `json:"ratio_to_floor"`
	P50S                     float64 `json:"p50_s"`
	P95S                     float64 `json:"p95_s"`
	P99S                     float64 `json:"p99_s"`
	Deliveries               int     `json:"deliveries"`
	Duplicates               int     `json:"duplicates"`
	NotFinal                 int     `json:"not_final"`
	DigipoortCallsPerDecl    float64 `json:"digipoort_calls_per_declaration"`
	HistoryEventsPerDecl     float64 `json:"history_events_per_declaration"`
	ActivitiesPerDecl        float64 `json:"activities_per_declaration"`
	SignalsPerDecl           float64 `json:"signals_per_declaration"`
	WorkerPeakRSSMiB         float64 `json:"worker_peak_rss_mib"`
	DBBytesPer1000           float64 `json:"db_bytes_per_1000_declarations"`
	FirstSendReceiveS        float64 `json:"send_receive_run_s"`
	FirstSendReceiveMessages int     `json:"send_receive_run_messages"`
	SendReceiveRuns          int     `json:"send_receive_runs"`
	QueueS                   float64 `json:"queue_s"`
	TotalS                   float64 `json:"total_s"`
	FloorS                   float64 `json:"floor_s"`
}

// Run measures. It pauses the send/receive schedule while it runs (so that only its
// own runs move the messages) and resumes it afterwards.
func Run(ctx context.Context, cfg config.Config, st *store.Store, tc client.Client, opts Options) (Result, error) {
	if opts.N <= 0 || opts.Envs <= 0 {
		return Result{}, errors.New("--n and --envs must be positive")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Minute
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	say := func(format string, args ...any) { fmt.Fprintf(opts.Progress, "bench: "+format+"\n", args...) }

	if err := requireWorker(ctx, tc, cfg.TaskQueue); err != nil {
		return Result{}, err
	}
	if h := tc.ScheduleClient().GetHandle(ctx, "koerier-send-receive"); h != nil {
		if err := h.Pause(ctx, client.SchedulePauseOptions{Note: "paused by the benchmark"}); err == nil {
			defer func() { _ = h.Unpause(context.Background(), client.ScheduleUnpauseOptions{Note: "benchmark done"}) }()
			say("paused the send/receive schedule while measuring")
		}
	}
	sim := simClient{base: strings.TrimRight(opts.SimControlURL, "/")}
	callsBefore, err := sim.totalCalls(ctx)
	if err != nil {
		return Result{}, err
	}
	sizeBefore, err := dbSize(ctx, st)
	if err != nil {
		return Result{}, err
	}

	res := Result{Declarations: opts.N, Environments: opts.Envs}
	tag := "bench" + time.Now().UTC().Format("0102150405")
	envs := make([]string, opts.Envs)
	for i := range envs {
		envs[i] = fmt.Sprintf("%s-%d", tag, i)
		if _, err := st.AddEnvironment(ctx, store.Environment{Name: envs[i], AutoProcess: true}); err != nil {
			return Result{}, err
		}
	}

	// Queue: store and start each declaration's workflow, as `starter queue` does.
	say("queueing %d declarations across %d environments", opts.N, opts.Envs)
	start := time.Now()
	numbers := make([]int64, opts.N)
	starter := service.Starter(cfg, tc)
	var queued atomic.Int64
	err = parallel(ctx, opts.N, opts.Concurrency, func(i int) error {
		env := envs[i%len(envs)]
		q, err := st.Queue(ctx, store.QueueRequest{Environment: env, Type: domain.TypeVAT, Subject: fmt.Sprintf("%09dB01", i), Period: "2026-10",
			Attachments: []domain.Attachment{{FileName: "omzetbelasting.xbrl", MimeType: "application/xml", Content: demo.VATReturn}}})
		if err != nil {
			return err
		}
		numbers[i] = q.Number
		if err := starter.Start(ctx, q.Declaration()); err != nil {
			return err
		}
		if n := queued.Add(1); n%1000 == 0 {
			say("queued %d", n)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.QueueS = time.Since(start).Seconds()

	// Send/receive until every declaration is final and reported.
	lo, hi := numbers[0], numbers[0]
	for _, n := range numbers {
		lo, hi = min(lo, n), max(hi, n)
	}
	var runIDs []string
	for run := 0; ; run++ {
		done, err := finalCount(ctx, st, envs)
		if err != nil {
			return res, err
		}
		if done == opts.N {
			break
		}
		if ctx.Err() != nil {
			res.NotFinal = opts.N - done
			break
		}
		id := fmt.Sprintf("send-receive-%s-%d", tag, run)
		runIDs = append(runIDs, id)
		t0 := time.Now()
		wr, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: cfg.TaskQueue, StaticSummary: "benchmark send/receive"},
			pipeline.SendReceiveWorkflowType, pipeline.SendReceiveInput{Trigger: "benchmark", PageSize: cfg.PageSize, SendWait: cfg.SendWait})
		var counts pipeline.SendReceiveCounts
		if err == nil {
			err = wr.Get(ctx, &counts)
		}
		if err != nil {
			if pipeline.IsErrorType(err, pipeline.ErrTypeLockHeld) {
				say("run %d: waiting for the send/receive lock: %s", run, pipeline.RootMessage(err))
			} else {
				say("run %d: %v (trying again)", run, err)
			}
			time.Sleep(2 * time.Second)
			continue
		}
		took := time.Since(t0)
		if res.SendReceiveRuns == 0 {
			res.FirstSendReceiveS, res.FirstSendReceiveMessages = took.Seconds(), counts.Dispatched
		}
		res.SendReceiveRuns++
		say(
			"send/receive %d: %.1fs, dispatched %d, sent %d, statuses %d, documents %d; %d of %d final", run, took.Seconds(), counts.Dispatched,
			counts.Sent, counts.Replies, counts.Documents, done, opts.N,
		)
		time.Sleep(time.Second)
	}
	res.TotalS = time.Since(start).Seconds()
	res.ThroughputPerS = float64(opts.N-res.NotFinal) / res.TotalS

	lat, err := latencies(ctx, st, envs)
	if err != nil {
		return res, err
	}
	res.P50S, res.P95S, res.P99S = percentile(lat, 50), percentile(lat, 95), percentile(lat, 99)

	deliveries, err := sim.deliveries(ctx)
	if err != nil {
		return res, err
	}
	for _, n := range numbers {
		d := deliveries[domain.Aanleverkenmerk(cfg.AanleverkenmerkPrefix, n, 1)]
		res.Deliveries += d.Accepted
		res.Duplicates += d.Duplicates + d.Repeated
	}
	callsAfter, err := sim.totalCalls(ctx)
	if err != nil {
		return res, err
	}
	res.DigipoortCallsPerDecl = float64(callsAfter-callsBefore) / float64(opts.N)

	events, acts, sigs, err := historyFigures(ctx, tc, cfg.Namespace, envs, runIDs)
	if err != nil {
		return res, err
	}
	res.HistoryEventsPerDecl = float64(events) / float64(opts.N)
	res.ActivitiesPerDecl, res.SignalsPerDecl = acts, sigs
	if opts.WorkerPID > 0 {
		res.WorkerPeakRSSMiB = peakRSSMiB(opts.WorkerPID)
	}
	sizeAfter, err := dbSize(ctx, st)
	if err != nil {
		return res, err
	}
	res.DBBytesPer1000 = float64(sizeAfter-sizeBefore) / (float64(opts.N) / 1000)

	if !opts.NoFloor {
		say("measuring the floor: %d minimal workflows with %.0f activities and %.0f signals each", opts.N, math.Round(acts), math.Round(sigs))
		floor, took, err := runFloor(ctx, tc, cfg, opts, int(math.Round(acts)), int(math.Round(sigs)), tag)
		if err != nil {
			return res, fmt.Errorf("floor: %w", err)
		}
		res.FloorPerS, res.FloorS = floor, took.Seconds()
		if floor > 0 {
			res.RatioToFloor = res.ThroughputPerS / floor
		}
	}
	return res, nil
}

// requireWorker waits up to ten seconds for a worker to poll the task queue.
func requireWorker(ctx context.Context, tc client.Client, taskQueue string) error {
	for i := 0; ; i++ {
		d, err := tc.DescribeTaskQueue(ctx, taskQueue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		if err != nil {
			return fmt.Errorf("ask Temporal about task queue %s: %w (is `make run` running?)", taskQueue, err)
		}
		if len(d.GetPollers()) > 0 {
			return nil
		}
		if i == 20 {
			return fmt.Errorf("no worker polls task queue %s: start the services with `make run` first", taskQueue)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func finalCount(ctx context.Context, st *store.Store, envs []string) (int, error) {
	var n int
	err := st.DB().GetContext(ctx, &n, `SELECT count(*) FROM messages m JOIN environments e ON e.id = m.environment_id
		WHERE e.name = ANY($1) AND m.status = ANY($2) AND m.reported_status = m.status`, pq.Array(envs), pq.Array(domain.FinalStatuses()))
	return n, err
}

func latencies(ctx context.Context, st *store.Store, envs []string) ([]float64, error) {
	var out []float64
	err := st.DB().
		SelectContext(ctx, &out,
			`SELECT extract(epoch FROM m.last_status_change - m.queued_at)::float8 FROM messages m JOIN environments e ON e.id = m.environment_id
		WHERE e.name = ANY($1) AND m.status = ANY($2)`, pq.Array(envs), pq.Array(domain.FinalStatuses()))
	sort.Float64s(out)
	return out, err
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func dbSize(ctx context.Context, st *store.Store) (int64, error) {
	var n int64
	err := st.DB().GetContext(ctx, &n, `SELECT pg_database_size(current_database())`)
	return n, err
}

// historyFigures sums the history events of the benchmark's declarations and
// send/receive runs (every run, continued-as-new ones included), and counts the
// activities and signals of an average declaration from a sample of histories.
func historyFigures(ctx context.Context, tc client.Client, namespace string, envs []string, runIDs []string) (events int64, acts, sigs float64, err error) {
	quoted := make([]string, len(envs))
	for i, e := range envs {
		quoted[i] = strconv.Quote(e)
	}
	queries := []string{fmt.Sprintf(`KoerierEnvironment IN (%s)`, strings.Join(quoted, ","))}
	for _, id := range runIDs {
		queries = append(queries, fmt.Sprintf(`WorkflowId = %q`, id))
	}
	var sample []*workflowservice.ListWorkflowExecutionsResponse
	for qi, q := range queries {
		var token []byte
		for {
			resp, err := tc.ListWorkflow(
				ctx,
				&workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, Query: q, PageSize: 1000, NextPageToken: token},
			)
			if err != nil {
				return 0, 0, 0, fmt.Errorf("list workflows: %w", err)
			}
			for _, e := range resp.Executions {
				events += e.HistoryLength
			}
			if qi == 0 && len(sample) == 0 {
				sample = append(sample, resp)
			}
			token = resp.NextPageToken
			if len(token) == 0 {
				break
			}
		}
	}
	var n int
	for _, resp := range sample {
		for _, e := range resp.Executions {
			if n == 50 {
				break
			}
			a, s, err := countEvents(ctx, tc, e.Execution.WorkflowId, e.Execution.RunId)
			if err != nil {
				return 0, 0, 0, err
			}
			acts += float64(a)
			sigs += float64(s)
			n++
		}
	}
	if n > 0 {
		acts, sigs = acts/float64(n), sigs/float64(n)
	}
	return events, acts, sigs, nil
}

func countEvents(ctx context.Context, tc client.Client, id, run string) (acts, sigs int, err error) {
	it := tc.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return 0, 0, err
		}
		switch e.EventType {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			acts++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			sigs++
		}
	}
	return acts, sigs, nil
}

// peakRSSMiB reads the high-water mark of a process's resident memory.
func peakRSSMiB(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

type simClient struct{ base string }

func (s simClient) get(ctx context.Context, path string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("read the simulator's counts at %s: %w (start it with `make run`, or set --sim-control)", s.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("simulator control API %s: HTTP %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (s simClient) totalCalls(ctx context.Context) (int, error) {
	var v struct {
		Total int `json:"total"`
	}
	err := s.get(ctx, "/sim/calls", &v)
	return v.Total, err
}

type deliveryStats struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	// Repeated counts the extra processes a repeated delivery started (realistic mode).
	Repeated int `json:"repeated"`
}

func (s simClient) deliveries(ctx context.Context) (map[string]deliveryStats, error) {
	var v struct {
		Deliveries map[string]deliveryStats `json:"deliveries"`
	}
	err := s.get(ctx, "/sim/deliveries", &v)
	return v.Deliveries, err
}

// parallel runs fn for 0..n-1, at most c at a time, and stops at the first error.
func parallel(ctx context.Context, n, c int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
