package bench

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"
	"go.temporal.io/sdk/client"

	"koerier/bank/simulator"
	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// examplePayment is the pain.001.001.09 example of internal/demo (two transfers),
// embedded here because go:embed reads only below its package; a test keeps the two
// copies equal.
//
//go:embed example-pain001.xml
var examplePayment []byte

// DefaultPaymentWait bounds the bank send/receive rounds once everything is queued.
const DefaultPaymentWait = 5 * time.Minute

// paymentAt is how many declarations are queued before payment order j of p goes out:
// the orders spread evenly over the declarations' queueing, the first at once and the
// last before the last declaration.
func paymentAt(j, n, p int) int64 { return int64(j) * int64(n) / int64(p) }

var (
	msgIDElem     = regexp.MustCompile(`<MsgId>[^<]*</MsgId>`)
	pmtInfIDElem  = regexp.MustCompile(`<PmtInfId>[^<]*</PmtInfId>`)
	endToEndElem  = regexp.MustCompile(`<EndToEndId>[^<]*</EndToEndId>`)
	executionElem = regexp.MustCompile(`<ReqdExctnDt><Dt>[^<]*</Dt></ReqdExctnDt>`)
)

// paymentOrder is the example file as a new order: MsgId msgID, its blocks and
// transfers numbered under it (a bank refuses a MsgId it has seen, and an environment
// keeps its EndToEndIds apart), to be executed on due (YYYY-MM-DD). It fails when
// the example no longer holds an element it rewrites, rather than queue the same
// order twice.
func paymentOrder(tmpl []byte, msgID, due string) ([]byte, error) {
	doc := tmpl
	for _, r := range []struct {
		elem *regexp.Regexp
		name string
		with func(k int) string
	}{
		{msgIDElem, "MsgId", func(int) string { return "<MsgId>" + msgID + "</MsgId>" }},
		{pmtInfIDElem, "PmtInfId", func(k int) string { return fmt.Sprintf("<PmtInfId>%s-B%d</PmtInfId>", msgID, k) }},
		{endToEndElem, "EndToEndId", func(k int) string { return fmt.Sprintf("<EndToEndId>%s-T%d</EndToEndId>", msgID, k) }},
		{executionElem, "ReqdExctnDt/Dt", func(int) string { return "<ReqdExctnDt><Dt>" + due + "</Dt></ReqdExctnDt>" }},
	} {
		k := 0
		doc = r.elem.ReplaceAllFunc(doc, func([]byte) []byte {
			k++
			return []byte(r.with(k))
		})
		if k == 0 {
			return nil, fmt.Errorf("the benchmark's example payment order has no %s to rewrite: keep internal/bench/example-pain001.xml a pain.001.001.09", r.name)
		}
	}
	return doc, nil
}

// duplicateFiles counts the orders of ours (by MsgId) that the bank received more than
// once.
func duplicateFiles(files []simulator.FileRecord, ours map[string]bool) int {
	seen := map[string]bool{}
	for _, f := range files {
		if ours[f.MsgID] && f.TimesSeen > 1 {
			seen[f.MsgID] = true
		}
	}
	return len(seen)
}

// payments is the benchmark's share of payment orders: order j goes to environment
// j mod len(envs) as MsgId msgIDs[j] and becomes message numbers[j].
type payments struct {
	st      *store.Store
	ctl     bankControl
	envs    []string
	due     string
	msgIDs  []string
	numbers []int64
}

// preparePayments gives every environment a bank profile on the simulator and fixes
// the execution date: the database's today plus a week (a date in the past is refused,
// and the store checks against the database's date).
func preparePayments(ctx context.Context, st *store.Store, opts Options, envs []string, tag string) (*payments, error) {
	if opts.BankControlURL == "" {
		return nil, errors.New("--payments needs the bank simulator's control API: give --bank-control (KOERIER_DEV_BANK_CONTROL, which `make run` sets)")
	}
	p := &payments{st: st, ctl: bankControl{base: simulator.ControlURL(opts.BankControlURL)}, envs: envs, msgIDs: make([]string, opts.Payments), numbers: make([]int64, opts.Payments)}
	if err := localBank(ctx, st, p.ctl, opts.BankAddr, envs); err != nil {
		return nil, err
	}
	if err := st.DB().GetContext(ctx, &p.due, `SELECT to_char(current_date + 7, 'YYYY-MM-DD')`); err != nil {
		return nil, fmt.Errorf("read the database's date for the payment orders' execution date: %w", err)
	}
	for j := range p.msgIDs {
		p.msgIDs[j] = fmt.Sprintf("%s-P%d", strings.ToUpper(tag), j)
	}
	return p, nil
}

// queue queues order j and starts its workflow, as `starter queue --type payment` does.
func (p *payments) queue(ctx context.Context, j int, starter pipeline.Starter) error {
	doc, err := paymentOrder(examplePayment, p.msgIDs[j], p.due)
	if err != nil {
		return err
	}
	env := p.envs[j%len(p.envs)]
	q, err := p.st.Queue(ctx, store.QueueRequest{Environment: env, Type: domain.TypePayment,
		Attachments: []domain.Attachment{{FileName: p.msgIDs[j] + ".xml", MimeType: "application/xml", Content: doc}}})
	if err != nil {
		return fmt.Errorf("queue payment order %s for %s: %w", p.msgIDs[j], env, err)
	}
	p.numbers[j] = q.Number
	return starter.Start(ctx, q.Declaration())
}

func (p *payments) final(ctx context.Context) (int, error) {
	var n int
	err := p.st.DB().GetContext(ctx, &n, `SELECT count(*) FROM messages WHERE number = ANY($1) AND status = ANY($2)`,
		pq.Array(p.numbers), pq.Array(domain.FinalStatuses()))
	return n, err
}

// drive runs every environment's bank send/receive, as its schedule does in
// production, in rounds until every order is final or wait has passed. A failed run is
// told and tried again in the next round: the orders it left are counted as not final.
func (p *payments) drive(ctx context.Context, tc client.Client, taskQueue string, wait time.Duration, concurrency int, say func(string, ...any)) {
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for round := 0; ; round++ {
		done, err := p.final(outer)
		switch {
		case err == nil && done == len(p.numbers):
			return
		case ctx.Err() != nil:
			say("bank send/receive: gave up after %s with %d of %d payment orders final", wait, done, len(p.numbers))
			return
		case err != nil:
			say("bank send/receive: count the final payment orders: %v (trying again)", err)
		}
		var mu sync.Mutex
		var sum pipeline.BankSendReceiveResult
		var failed []string
		_ = parallel(ctx, len(p.envs), concurrency, func(i int) error {
			env := p.envs[i]
			run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: pipeline.BankRunID(env), TaskQueue: taskQueue,
				StaticSummary: "benchmark bank send/receive"},
				pipeline.BankSendReceiveWorkflowType, pipeline.BankSendReceiveInput{Environment: env, Trigger: "benchmark"})
			var res pipeline.BankSendReceiveResult
			if err == nil {
				err = run.Get(ctx, &res)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: %s", env, pipeline.RootMessage(err)))
				return nil
			}
			sum.Dispatched += res.Dispatched
			sum.Reports += res.Reports
			sum.Linked += res.Linked
			sum.Unknown += res.Unknown
			return nil
		})
		say("bank send/receive round %d: dispatched %d, reports %d (linked %d, unknown %d); %d of %d payment orders final before it",
			round, sum.Dispatched, sum.Reports, sum.Linked, sum.Unknown, done, len(p.numbers))
		if len(failed) > 0 {
			sort.Strings(failed)
			say("bank send/receive round %d failed for %d environment(s), trying again: %s", round, len(failed), failed[0])
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// figures fills in the payment orders' share of the result: how many are final, the
// rate from the first queued to the last final (the database's clock for both), the
// latencies, and the files the bank received more than once.
func (p *payments) figures(ctx context.Context, res *Result) error {
	var span struct {
		Final int        `db:"final"`
		First *time.Time `db:"first"`
		Last  *time.Time `db:"last"`
	}
	final := pq.Array(domain.FinalStatuses())
	if err := p.st.DB().GetContext(ctx, &span, `SELECT count(*) FILTER (WHERE status = ANY($2)) AS final, min(queued_at) AS first,
		max(last_status_change) FILTER (WHERE status = ANY($2)) AS last FROM messages WHERE number = ANY($1)`, pq.Array(p.numbers), final); err != nil {
		return fmt.Errorf("read the payment orders' figures: %w", err)
	}
	res.Payments, res.PaymentsFinal = len(p.numbers), span.Final
	if span.First != nil && span.Last != nil {
		res.PaymentsS = span.Last.Sub(*span.First).Seconds()
		if res.PaymentsS > 0 {
			res.PaymentsPerS = float64(span.Final) / res.PaymentsS
		}
	}
	var lat []float64
	if err := p.st.DB().SelectContext(ctx, &lat, `SELECT extract(epoch FROM last_status_change - queued_at)::float8 FROM messages
		WHERE number = ANY($1) AND status = ANY($2)`, pq.Array(p.numbers), final); err != nil {
		return fmt.Errorf("read the payment orders' latencies: %w", err)
	}
	sort.Float64s(lat)
	res.PaymentP50S, res.PaymentP99S = percentile(lat, 50), percentile(lat, 99)
	ours := map[string]bool{}
	for _, id := range p.msgIDs {
		ours[id] = true
	}
	for _, env := range p.envs {
		files, err := p.ctl.files(ctx, env)
		if err != nil {
			return err
		}
		res.PaymentDuplicates += duplicateFiles(files, ours)
	}
	return nil
}
