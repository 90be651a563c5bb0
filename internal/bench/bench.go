// Package bench measures Koerier end to end against running services (those `make run`
// starts): it queues N declarations across M environments, runs send/receive until all
// are final, and reports throughput, latency, Digipoort calls, Temporal history,
// worker memory, database growth and the Temporal actions a declaration is billed —
// and, on the same Temporal server, two floors: a minimal workflow with the same
// number of activities and signals per declaration, and the least floor, one activity
// and one signal, the least a durable declaration can cost. In
// API mode it also queues through the API beside the direct path and receives the
// webhooks, to show whether the API's front door or its push back is the bottleneck.
// With payment orders (Options.Payments) it queues them among the declarations and
// drives them through each environment's bank send/receive on the bank simulator.
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
	// APIURL switches on API mode: half of the declarations are queued through the API
	// at this address (POST /v1/messages, as an environment does), half the command
	// line's direct way, in alternating rounds; every environment gets a token and a
	// webhook to a receiver the benchmark runs. Empty: everything the direct way.
	APIURL string
	// WebhookWait bounds the wait for the last webhooks once every declaration is
	// final; 0 means 2 minutes.
	WebhookWait time.Duration
	// Payments is how many payment orders (pain.001) to queue beside the declarations,
	// spread over the environments and interleaved with the declarations' queueing;
	// each environment then gets a bank profile on the bank simulator, whose control
	// API is BankControlURL and whose SFTP the workers reach at BankAddr (empty: the
	// address the simulator names). 0: none.
	Payments       int
	BankControlURL string
	BankAddr       string
	// PaymentWait bounds the bank send/receive rounds; 0 means DefaultPaymentWait.
	PaymentWait time.Duration
	Progress    io.Writer
}

// Result is what the benchmark prints; --json prints it as one object.
type Result struct {
	Declarations          int     `json:"declarations"`
	Environments          int     `json:"environments"`
	ThroughputPerS        float64 `json:"throughput_per_s"`
	FloorPerS             float64 `json:"floor_per_s"`
	RatioToFloor          float64 `json:"ratio_to_floor"`
	P50S                  float64 `json:"p50_s"`
	P95S                  float64 `json:"p95_s"`
	P99S                  float64 `json:"p99_s"`
	Deliveries            int     `json:"deliveries"`
	Duplicates            int     `json:"duplicates"`
	NotFinal              int     `json:"not_final"`
	DigipoortCallsPerDecl float64 `json:"digipoort_calls_per_declaration"`
	HistoryEventsPerDecl  float64 `json:"history_events_per_declaration"`
	ActivitiesPerDecl     float64 `json:"activities_per_declaration"`
	SignalsPerDecl        float64 `json:"signals_per_declaration"`
	// EventsPerDecl is the mean history length of the run's declaration workflows
	// (all runs of each); HistoryEventsPerDecl adds the send/receive runs' share.
	EventsPerDecl float64 `json:"events_per_declaration"`
	// ActionsPerDecl is what Temporal Cloud bills per declaration (see Actions): the
	// mean of a sample of declaration workflows plus SendReceiveActionsPerDecl, the
	// send/receive runs' actions divided by N. ActionsByKind splits the sample's mean.
	ActionsPerDecl            float64            `json:"actions_per_declaration"`
	SendReceiveActionsPerDecl float64            `json:"send_receive_actions_per_declaration"`
	ActionsByKind             map[string]float64 `json:"actions_by_kind"`
	ActionsSample             int                `json:"actions_sample"`
	WorkerPeakRSSMiB          float64            `json:"worker_peak_rss_mib"`
	DBBytesPer1000            float64            `json:"db_bytes_per_1000_declarations"`
	FirstSendReceiveS         float64            `json:"send_receive_run_s"`
	FirstSendReceiveMessages  int                `json:"send_receive_run_messages"`
	SendReceiveRuns           int                `json:"send_receive_runs"`
	QueueS                    float64            `json:"queue_s"`
	TotalS                    float64            `json:"total_s"`
	FloorS                    float64            `json:"floor_s"`
	// The floor's workflows cost these per workflow, counted as for the declarations.
	FloorEventsPerWorkflow  float64 `json:"floor_events_per_workflow"`
	FloorActionsPerWorkflow float64 `json:"floor_actions_per_workflow"`
	// The least floor (MinFloorWorkflow: one activity, one signal), same server, same run.
	MinFloorPerS               float64 `json:"min_floor_per_s"`
	RatioToMinFloor            float64 `json:"ratio_to_min_floor"`
	MinFloorS                  float64 `json:"min_floor_s"`
	MinFloorEventsPerWorkflow  float64 `json:"min_floor_events_per_workflow"`
	MinFloorActionsPerWorkflow float64 `json:"min_floor_actions_per_workflow"`
	// API holds API mode's figures; nil without it.
	API *APIResult `json:"api,omitempty"`
	// The payment orders (Options.Payments): how many were queued and are final,
	// their rate from the first queued to the last final (PaymentsS), queue-to-final
	// latencies, and how many the bank received more than once. 0 without payments.
	Payments          int     `json:"payments"`
	PaymentsFinal     int     `json:"payments_final"`
	PaymentsPerS      float64 `json:"payments_per_s"`
	PaymentsS         float64 `json:"payments_s"`
	PaymentP50S       float64 `json:"payment_p50_s"`
	PaymentP99S       float64 `json:"payment_p99_s"`
	PaymentDuplicates int     `json:"payment_duplicates"`
}

// Run measures. It pauses the send/receive schedule while it runs (so that only its
// own runs move the messages) and resumes it afterwards.
func Run(ctx context.Context, cfg config.Config, st *store.Store, tc client.Client, opts Options) (Result, error) {
	if opts.N <= 0 || opts.Envs <= 0 {
		return Result{}, errors.New("--n and --envs must be positive")
	}
	if opts.Payments < 0 {
		return Result{}, errors.New("--payments must be 0 or more")
	}
	if opts.PaymentWait <= 0 {
		opts.PaymentWait = DefaultPaymentWait
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

	// A worker from before the control queue would leave send/receive waiting there.
	for _, queue := range []string{cfg.TaskQueue, pipeline.ControlQueue(cfg.TaskQueue)} {
		if err := requireWorker(ctx, tc, queue); err != nil {
			return Result{}, err
		}
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
	var pay *payments
	if opts.Payments > 0 {
		if pay, err = preparePayments(ctx, st, opts, envs, tag); err != nil {
			return Result{}, err
		}
		say("%d payment orders across the same environments, each with a bank profile on the simulator at %s", opts.Payments, pay.ctl.base)
	}

	var (
		apiC *apiClient
		recv *receiver
	)
	if opts.APIURL != "" {
		apiC = newAPIClient(opts.APIURL, opts.Concurrency)
		defer apiC.close()
		if err := apiC.healthy(ctx); err != nil {
			return Result{}, err
		}
		if recv, err = startReceiver(); err != nil {
			return Result{}, err
		}
		defer recv.close()
		if err := prepareAPI(ctx, st, apiC, recv, envs); err != nil {
			return Result{}, err
		}
		res.API = &APIResult{Concurrency: opts.Concurrency}
		say("API mode: queueing through %s and the direct way in turns; webhooks to %s", strings.Join(apiC.bases, " and "), recv.url)
	}

	// Queue: store and start each declaration's workflow, as `starter queue` does, or
	// post it to the API, which does the same behind its front door.
	say("queueing %d declarations across %d environments", opts.N, opts.Envs)
	start := time.Now()
	numbers := make([]int64, opts.N)
	took := make([]float64, opts.N)
	starter := service.Starter(cfg, tc)
	var queued atomic.Int64
	queueOne := func(i int, api bool) error {
		env := envs[i%len(envs)]
		subject, t0 := fmt.Sprintf("%09dB01", i), time.Now()
		if api {
			n, err := apiC.queue(ctx, env, fmt.Sprintf("%s-%d", tag, i), subject, "2026-10")
			if err != nil {
				return err
			}
			numbers[i] = n
		} else {
			q, err := st.Queue(ctx, store.QueueRequest{Environment: env, Type: domain.TypeVAT, Subject: subject, Period: "2026-10",
				Attachments: []domain.Attachment{{FileName: "omzetbelasting.xbrl", MimeType: "application/xml", Content: demo.VATReturn}}})
			if err != nil {
				return err
			}
			numbers[i] = q.Number
			if err := starter.Start(ctx, q.Declaration()); err != nil {
				return err
			}
		}
		took[i] = time.Since(t0).Seconds()
		if n := queued.Add(1); n%1000 == 0 {
			say("queued %d", n)
		}
		return nil
	}
	// The payment orders go beside them, order j once paymentAt(j) declarations are in.
	payQueued := make(chan error, 1)
	payCtx, stopPayments := context.WithCancel(ctx)
	defer stopPayments()
	if pay != nil {
		go func() {
			payQueued <- parallel(payCtx, opts.Payments, opts.Concurrency, func(j int) error {
				for queued.Load() < paymentAt(j, opts.N, opts.Payments) {
					if err := payCtx.Err(); err != nil {
						return err
					}
					time.Sleep(time.Millisecond)
				}
				return pay.queue(payCtx, j, starter)
			})
		}()
	} else {
		payQueued <- nil
	}
	if apiC == nil {
		err = parallel(ctx, opts.N, opts.Concurrency, func(i int) error { return queueOne(i, false) })
	} else {
		err = queueInRounds(ctx, opts, res.API, took, queueOne)
	}
	res.QueueS = time.Since(start).Seconds()
	if err != nil {
		stopPayments()
		<-payQueued
		return res, err
	}
	if err := <-payQueued; err != nil {
		return res, err
	}
	// The payment orders move through their banks' send/receive while the declarations
	// move through Digipoort's.
	paid := make(chan struct{})
	if pay != nil {
		go func() {
			defer close(paid)
			pay.drive(ctx, tc, pipeline.ControlQueue(cfg.TaskQueue), opts.PaymentWait, opts.Concurrency, say)
		}()
	} else {
		close(paid)
	}

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
		wr, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: pipeline.ControlQueue(cfg.TaskQueue), StaticSummary: "benchmark send/receive"},
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
	<-paid
	if pay != nil {
		if err := pay.figures(ctx, &res); err != nil {
			return res, err
		}
		say("payment orders: %d of %d final, %.1f/s", res.PaymentsFinal, res.Payments, res.PaymentsPerS)
	}

	lat, err := latencies(ctx, st, envs)
	if err != nil {
		return res, err
	}
	res.P50S, res.P95S, res.P99S = percentile(lat, 50), percentile(lat, 95), percentile(lat, 99)

	if recv != nil {
		wait := opts.WebhookWait
		if wait <= 0 {
			wait = 2 * time.Minute
		}
		total, err := awaitWebhooks(ctx, st, recv, envs, wait)
		if err != nil {
			return res, err
		}
		wl, err := webhookLatencies(ctx, st, recv, envs)
		if err != nil {
			return res, err
		}
		recv.mu.Lock()
		res.API.WebhookCount, res.API.WebhookDuplicates, res.API.WebhookBadSignatures = len(recv.arrived), recv.dupes, recv.badSigs
		recv.mu.Unlock()
		res.API.WebhookP50S, res.API.WebhookP99S = percentile(wl, 50), percentile(wl, 99)
		res.API.WebhookNotArrived = max(0, total-res.API.WebhookCount)
		say("webhooks: %d of %d arrived", res.API.WebhookCount, total)
	}

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

	h, err := historyFigures(ctx, tc, cfg.Namespace, envs, runIDs)
	if err != nil {
		return res, err
	}
	acts, sigs := h.decl.per(h.decl.Actions.Activities), h.decl.per(h.decl.Actions.Signals)
	res.HistoryEventsPerDecl = float64(h.events) / float64(opts.N)
	res.EventsPerDecl = h.decl.EventsPer()
	res.ActivitiesPerDecl, res.SignalsPerDecl = acts, sigs
	res.SendReceiveActionsPerDecl = float64(h.sendReceive.Total()) / float64(opts.N)
	res.ActionsPerDecl = h.decl.ActionsPer() + res.SendReceiveActionsPerDecl
	res.ActionsByKind, res.ActionsSample = h.decl.byKind(), h.decl.Sampled
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
		floor, err := runFloor(ctx, tc, cfg, opts, tag, floorSpec{name: "floor", workflow: FloorWorkflow, typeName: "FloorWorkflow",
			args: []any{FloorInput{Activities: int(math.Round(acts)), Signals: int(math.Round(sigs))}}, signals: int(math.Round(sigs))})
		if err != nil {
			return res, fmt.Errorf("floor: %w", err)
		}
		res.FloorPerS, res.FloorS = floor.perS, floor.took.Seconds()
		res.FloorEventsPerWorkflow, res.FloorActionsPerWorkflow = floor.events, floor.actions
		if floor.perS > 0 {
			res.RatioToFloor = res.ThroughputPerS / floor.perS
		}
		say("measuring the least floor: %d workflows with one activity and one signal each", opts.N)
		least, err := runFloor(ctx, tc, cfg, opts, tag, floorSpec{name: "min-floor", workflow: MinFloorWorkflow, typeName: "MinFloorWorkflow", signals: 1})
		if err != nil {
			return res, fmt.Errorf("least floor: %w", err)
		}
		res.MinFloorPerS, res.MinFloorS = least.perS, least.took.Seconds()
		res.MinFloorEventsPerWorkflow, res.MinFloorActionsPerWorkflow = least.events, least.actions
		if least.perS > 0 {
			res.RatioToMinFloor = res.ThroughputPerS / least.perS
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
			return fmt.Errorf("no worker polls task queue %s: start the services with `make run` first, or restart a worker built before that queue existed", taskQueue)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func finalCount(ctx context.Context, st *store.Store, envs []string) (int, error) {
	var n int
	err := st.DB().GetContext(ctx, &n, `SELECT count(*) FROM messages m JOIN environments e ON e.id = m.environment_id
		WHERE e.name = ANY($1) AND m.message_type <> $3 AND m.status = ANY($2) AND m.reported_status = m.status`, pq.Array(envs),
		pq.Array(domain.FinalStatuses()), domain.TypePayment)
	return n, err
}

func latencies(ctx context.Context, st *store.Store, envs []string) ([]float64, error) {
	var out []float64
	err := st.DB().
		SelectContext(ctx, &out,
			`SELECT extract(epoch FROM m.last_status_change - m.queued_at)::float8 FROM messages m JOIN environments e ON e.id = m.environment_id
		WHERE e.name = ANY($1) AND m.message_type <> $3 AND m.status = ANY($2)`, pq.Array(envs), pq.Array(domain.FinalStatuses()),
			domain.TypePayment)
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

// history holds the run's Temporal figures: the events of every workflow of the
// benchmark's environments and of its send/receive runs, the declarations' own
// figures, and the actions of every send/receive run (all read: there are few).
type history struct {
	events      int64
	decl        workflowFigures
	sendReceive Actions
}

// historyFigures waits (a little) for the declarations' workflows to close, so that
// visibility's history lengths are final, then lists and samples them.
func historyFigures(ctx context.Context, tc client.Client, namespace string, envs []string, runIDs []string) (history, error) {
	quoted := make([]string, len(envs))
	for i, e := range envs {
		quoted[i] = strconv.Quote(e)
	}
	// The payment orders of a mixed run share the environments and the workflow type;
	// they are not declarations.
	envQuery := fmt.Sprintf(`KoerierEnvironment IN (%s) AND KoerierMessageType != %q`, strings.Join(quoted, ","), domain.TypePayment)
	// A final, reported declaration ends once its last webhook is dealt with; a figure
	// read before that undercounts, so wait, but not for ever: a workflow that keeps
	// running is counted as it stands.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		resp, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace,
			Query: fmt.Sprintf(`%s AND WorkflowType IN (%q, %q) AND ExecutionStatus = "Running"`, envQuery, pipeline.CompactDeclarationWorkflowType,
				pipeline.DeclarationWorkflowType)})
		if err != nil {
			return history{}, fmt.Errorf("count running declaration workflows: %w", err)
		}
		if resp.Count == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	var h history
	figs, err := listFigures(ctx, tc, namespace, []string{envQuery}, sampleSize, pipeline.CompactDeclarationWorkflowType)
	if err != nil {
		return h, err
	}
	for typ, f := range figs {
		h.events += f.Events
		if typ == pipeline.CompactDeclarationWorkflowType {
			h.decl = *f
		}
	}
	queries := make([]string, len(runIDs))
	for i, id := range runIDs {
		queries[i] = fmt.Sprintf(`WorkflowId = %q`, id)
	}
	figs, err = listFigures(ctx, tc, namespace, queries, math.MaxInt, "")
	if err != nil {
		return h, err
	}
	for _, f := range figs {
		h.events += f.Events
		h.sendReceive = h.sendReceive.Plus(f.Actions)
	}
	return h, nil
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

// queueInRounds queues through the API and the direct way in alternating rounds (see
// rounds) and fills in each path's rate and latency.
func queueInRounds(ctx context.Context, opts Options, r *APIResult, took []float64, queueOne func(i int, api bool) error) error {
	var apiS, directS float64
	var apiLat, directLat []float64
	for k, c := range rounds(opts.N, opts.Concurrency) {
		api := viaAPI(k)
		t0 := time.Now()
		if err := parallel(ctx, c[1]-c[0], opts.Concurrency, func(i int) error { return queueOne(c[0]+i, api) }); err != nil {
			return err
		}
		if api {
			apiS += time.Since(t0).Seconds()
			apiLat = append(apiLat, took[c[0]:c[1]]...)
		} else {
			directS += time.Since(t0).Seconds()
			directLat = append(directLat, took[c[0]:c[1]]...)
		}
	}
	sort.Float64s(apiLat)
	sort.Float64s(directLat)
	r.Requests, r.Direct = len(apiLat), len(directLat)
	r.PostP50S, r.PostP99S = percentile(apiLat, 50), percentile(apiLat, 99)
	r.DirectP50S, r.DirectP99S = percentile(directLat, 50), percentile(directLat, 99)
	if apiS > 0 {
		r.RequestsPerS = float64(r.Requests) / apiS
	}
	if directS > 0 {
		r.DirectPerS = float64(r.Direct) / directS
	}
	if r.DirectPerS > 0 {
		r.RatioDirect = r.RequestsPerS / r.DirectPerS
	}
	return nil
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
