// Package conformance runs Logius' conformance scenarios: before a software package
// may file in production, Logius requires it to pass a set of scenarios in its
// conformance environment. That environment picks the scenario from the
// aanleverkenmerk of a delivery (the scenario's name), so a run delivers one message
// per scenario with that aanleverkenmerk, follows it to its end through the status
// service, and checks that Koerier draws the right conclusion from what Digipoort
// did: accepted, rejected, failed, retry later, or ask an operator.
//
// The check is on Koerier's conclusions, not on exact status sequences: Logius does
// not publish the sequences of every scenario, and what matters for a filing is that
// Koerier never takes a failure for a success (or the reverse) and never gives up on
// what is only overload. The codes seen are reported with each result, so a person
// can compare them with Logius' own description.
//
// Runs never go to production: a conformance delivery is a real delivery outside
// Koerier's durable pipeline (nothing records it, nothing prevents filing twice), so
// the command that uses this package refuses production's endpoints.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"koerier/digipoort"
	"koerier/domain"
)

// Digipoort is what a run needs of the client.
type Digipoort interface {
	Deliver(ctx context.Context, r digipoort.DeliverRequest) (digipoort.DeliverResponse, error)
	Statuses(ctx context.Context, kenmerk string, from, to time.Time) ([]digipoort.Status, error)
}

// Expect is what Koerier must conclude from a scenario.
type Expect struct {
	// Refused: aanleveren answers with a final fault and no process starts; Koerier
	// marks the message send_failed and does not deliver again on its own.
	Refused bool
	// StatusRefused: the delivery succeeds but the status service answers with a
	// final fault; Koerier reports it and keeps the message as sent.
	StatusRefused bool
	// Final is the status Koerier must derive at the end (not checked when Refused
	// or StatusRefused).
	Final domain.Status
	// StillRetrying also passes a run that is in progress when the time is up,
	// provided the codes in MustSee were seen: Digipoort may retry for 72 hours, and
	// waiting is then the right conclusion.
	StillRetrying bool
	// MustSee are codes that must have been seen (e.g. 420 for a technical problem).
	MustSee []string
}

// Scenario is one of Logius' conformance scenarios.
type Scenario struct {
	Name   string // Logius' name; also the aanleverkenmerk that selects it
	About  string // what Digipoort does in it
	Expect Expect
}

// Scenarios are Logius' conformance scenarios for WUS koppelvlak 1.2, with what
// Koerier must conclude from each.
func Scenarios() []Scenario {
	return []Scenario{
		{"Happyflow", "the return is delivered, validated and accepted by the authority (500)",
			Expect{Final: domain.StatusAccepted}},
		{"AanleverFault", "aanleveren answers with a SOAP fault (ALS…): no process",
			Expect{Refused: true}},
		{"StatusInformatieFault", "the delivery succeeds, the status service answers with a SOAP fault (STS…)",
			Expect{StatusRefused: true}},
		{"Afleverfout", "Digipoort cannot hand the return to the authority (410)",
			Expect{Final: domain.StatusFailed}},
		{"Foutuitvragendepartij", "the authority rejects the return",
			Expect{Final: domain.StatusRejected}},
		{"TechnischProbleemAfleveren", "a technical problem delivering to the authority (420); Digipoort retries",
			Expect{Final: domain.StatusAccepted, StillRetrying: true, MustSee: []string{"420"}}},
		{"MaximaalAantalAfleverpogingen", "Digipoort gives up after its delivery attempts (420 with AFS600): not filed",
			Expect{Final: domain.StatusFailed, MustSee: []string{"420"}}},
		{"ZwaarbelastAanleveren", "aanleveren is heavily loaded: transient faults, then the happy flow",
			Expect{Final: domain.StatusAccepted}},
		{"OverbelastAanleveren", "aanleveren is overloaded: transient faults, then the happy flow",
			Expect{Final: domain.StatusAccepted}},
		{"ZwaarbelastStatusInformatie", "the status service is heavily loaded: transient faults, then the statuses",
			Expect{Final: domain.StatusAccepted}},
		{"OverbelastStatusInformatie", "the status service is overloaded: transient faults, then the statuses",
			Expect{Final: domain.StatusAccepted}},
	}
}

// Lookup returns the scenarios with the given names (case-insensitive); no names
// means all of them.
func Lookup(names []string) ([]Scenario, error) {
	all := Scenarios()
	if len(names) == 0 {
		return all, nil
	}
	var out []Scenario
	for _, n := range names {
		i := slices.IndexFunc(all, func(s Scenario) bool { return strings.EqualFold(s.Name, strings.TrimSpace(n)) })
		if i < 0 {
			known := make([]string, len(all))
			for j, s := range all {
				known[j] = s.Name
			}
			return nil, fmt.Errorf("unknown conformance scenario %q (known: %s)", n, strings.Join(known, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// Defaults of Options.
const (
	DefaultPoll    = 5 * time.Second
	DefaultTimeout = 15 * time.Minute
	// maxRetryWait caps the back-off between deliveries after transient faults: an
	// overloaded Digipoort should not be asked every few seconds.
	maxRetryWait = time.Minute
)

// Options steer a run.
type Options struct {
	// Request is the delivery to make; Aanleverkenmerk is set per run.
	Request digipoort.DeliverRequest
	// Poll is the time between status requests, and the first wait before
	// delivering again after a transient fault (the wait doubles up to a minute);
	// zero means DefaultPoll.
	Poll time.Duration
	// Timeout bounds one run from its first delivery to its final status; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Progress, when set, receives a line for every step (for long runs against
	// Logius, where a flow takes minutes).
	Progress func(line string)
}

func (o Options) withDefaults() Options {
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

// Run is one delivery followed to its end.
type Run struct {
	Aanleverkenmerk string
	Kenmerk         string
	// Deliveries counts the aanleveren calls made.
	Deliveries int
	// TransientFaults are the foutcodes (or messages) of faults that were retried.
	TransientFaults []string
	// Refusal is the final error of aanleveren, when Digipoort refused the delivery.
	Refusal error
	// StatusRefusal is the final error of the status service, when it refused.
	StatusRefusal error
	Statuses      []digipoort.Status
	// Derived is the status Koerier derives; Final says whether it ends the message.
	Derived domain.Status
	Final   bool
	// TimedOut is set when the run ended because Options.Timeout passed.
	TimedOut bool
}

// Codes are the status codes seen, in Digipoort's order.
func (r Run) Codes() []string {
	out := make([]string, 0, len(r.Statuses))
	for _, s := range r.Statuses {
		out = append(out, s.Code)
	}
	return out
}

// Follow delivers opts.Request with the aanleverkenmerk and follows it until Koerier
// derives a final status, Digipoort refuses the delivery or the status request for
// good, or the time is up. Transient faults are retried every Poll. The error is for
// what ends a run without an answer from Digipoort (a cancelled context, a request
// that cannot be made); Digipoort's refusals are part of the Run.
func Follow(ctx context.Context, dp Digipoort, opts Options, aanleverkenmerk string) (Run, error) {
	opts = opts.withDefaults()
	run := Run{Aanleverkenmerk: aanleverkenmerk, Derived: domain.StatusQueued}
	deadline := time.Now().Add(opts.Timeout)
	req := opts.Request
	req.Aanleverkenmerk = aanleverkenmerk

	wait := opts.Poll
	for {
		run.Deliveries++
		resp, err := dp.Deliver(ctx, req)
		if err == nil {
			run.Kenmerk = resp.Kenmerk
			run.Derived = domain.StatusSent
			opts.progress("%s: delivered, kenmerk %s", aanleverkenmerk, resp.Kenmerk)
			break
		}
		if ctx.Err() != nil {
			return run, ctx.Err()
		}
		var de *digipoort.Error
		if errors.As(err, &de) && de.Statuscode == "210" && resp.Kenmerk != "" {
			// Delivered, but not authenticated: a process with a final status.
			run.Kenmerk = resp.Kenmerk
			run.Statuses = []digipoort.Status{{Kenmerk: resp.Kenmerk, Code: "210", Time: resp.StatusTime}}
			run.Derived, run.Final = derive(run.Statuses)
			return run, nil
		}
		if digipoort.IsFinal(err) {
			if digipoort.MayHaveArrived(err) {
				// The answer was unusable, not a refusal: looking the delivery up is
				// the pipeline's job; a conformance run reports it as what it is.
				return run, fmt.Errorf("deliver %s: the answer could not be used, and the delivery may have arrived: %w", aanleverkenmerk, err)
			}
			run.Refusal = err
			run.Derived, run.Final = domain.StatusSendFailed, true
			opts.progress("%s: delivery refused: %s", aanleverkenmerk, oneLine(err))
			return run, nil
		}
		run.TransientFaults = append(run.TransientFaults, faultName(err))
		opts.progress("%s: delivery %d not accepted for now (%s); trying again in %s", aanleverkenmerk, run.Deliveries, faultName(err), wait)
		if time.Now().Add(wait).After(deadline) {
			run.TimedOut = true
			return run, nil
		}
		if err := sleep(ctx, wait); err != nil {
			return run, err
		}
		wait = min(2*wait, max(opts.Poll, maxRetryWait))
	}

	for {
		statuses, err := dp.Statuses(ctx, run.Kenmerk, time.Time{}, time.Time{})
		var de *digipoort.Error
		switch {
		case ctx.Err() != nil:
			return run, ctx.Err()
		case err == nil || (errors.As(err, &de) && de.Statuscode == "210" && len(statuses) > 0):
			if len(statuses) > len(run.Statuses) {
				for _, s := range statuses[len(run.Statuses):] {
					opts.progress("%s: status %s %s%s", aanleverkenmerk, s.Code, s.Description, withFoutcode(s.ErrorCode))
				}
			}
			run.Statuses = statuses
			run.Derived, run.Final = derive(statuses)
			if run.Final {
				return run, nil
			}
		case digipoort.IsFinal(err):
			run.StatusRefusal = err
			opts.progress("%s: status request refused: %s", aanleverkenmerk, oneLine(err))
			return run, nil
		default:
			run.TransientFaults = append(run.TransientFaults, faultName(err))
			opts.progress("%s: status request not answered for now (%s)", aanleverkenmerk, faultName(err))
		}
		if time.Now().Add(opts.Poll).After(deadline) {
			run.TimedOut = true
			return run, nil
		}
		if err := sleep(ctx, opts.Poll); err != nil {
			return run, err
		}
	}
}

func derive(statuses []digipoort.Status) (domain.Status, bool) {
	codes := make([]domain.StatusCode, len(statuses))
	for i, s := range statuses {
		codes[i] = domain.StatusCode{Code: s.Code, Foutcode: s.ErrorCode}
	}
	st := domain.DeriveStatus(codes)
	return st, st.IsFinal()
}

// Result is the verdict on one scenario.
type Result struct {
	Name          string        `json:"name"`
	Passed        bool          `json:"passed"`
	Codes         []string      `json:"codes"`
	DerivedStatus domain.Status `json:"derived_status"`
	Kenmerk       string        `json:"kenmerk,omitempty"`
	Deliveries    int           `json:"deliveries"`
	Faults        []string      `json:"faults,omitempty"`
	// Why says what was expected and what happened when the scenario did not pass,
	// and for a pass what made it one.
	Why string `json:"why"`
}

// Judge compares a run with what the scenario expects.
func Judge(sc Scenario, run Run) Result {
	res := Result{Name: sc.Name, Codes: run.Codes(), DerivedStatus: run.Derived, Kenmerk: run.Kenmerk, Deliveries: run.Deliveries,
		Faults: run.TransientFaults}
	if res.Codes == nil {
		res.Codes = []string{}
	}
	if run.Refusal != nil {
		res.Faults = append(res.Faults, faultName(run.Refusal))
	}
	if run.StatusRefusal != nil {
		res.Faults = append(res.Faults, faultName(run.StatusRefusal))
	}
	fail := func(format string, args ...any) Result {
		res.Passed, res.Why = false, fmt.Sprintf(format, args...)
		return res
	}
	e := sc.Expect
	switch {
	case e.Refused:
		if run.Refusal == nil {
			return fail("expected aanleveren to be refused with a final fault; it was not (derived %s)", run.Derived)
		}
		res.Passed, res.Why = true, "refused for good: "+oneLine(run.Refusal)
		return res
	case run.Refusal != nil:
		return fail("the delivery was refused: %s", oneLine(run.Refusal))
	case e.StatusRefused:
		if run.StatusRefusal == nil {
			return fail("expected the status service to refuse with a final fault; it did not (derived %s)", run.Derived)
		}
		res.Passed, res.Why = true, "status request refused for good: "+oneLine(run.StatusRefusal)
		return res
	case run.StatusRefusal != nil:
		return fail("the status service refused: %s", oneLine(run.StatusRefusal))
	}
	for _, code := range e.MustSee {
		if !slices.Contains(res.Codes, code) {
			return fail("expected status %s among the codes; saw %s", code, strings.Join(res.Codes, " "))
		}
	}
	switch {
	case run.Final && run.Derived == e.Final:
		res.Passed, res.Why = true, fmt.Sprintf("ended %s as expected", run.Derived)
	case run.Final:
		return fail("ended %s; expected %s", run.Derived, e.Final)
	case run.TimedOut && e.StillRetrying:
		res.Passed, res.Why = true, fmt.Sprintf("Digipoort is still retrying (%s) and Koerier keeps waiting, as it should", run.Derived)
	case run.TimedOut:
		return fail("no final status in time (derived %s; expected %s): raise --timeout if Digipoort is slow", run.Derived, e.Final)
	default:
		return fail("the run ended without a final status (derived %s; expected %s)", run.Derived, e.Final)
	}
	return res
}

// RunAll runs the scenarios one after another (Logius' environment is shared; a
// conformance run is not a load test) and judges each. The error is for a run that
// could not be made at all (context cancelled); every scenario before it has a result.
func RunAll(ctx context.Context, dp Digipoort, opts Options, scenarios []Scenario) ([]Result, error) {
	out := make([]Result, 0, len(scenarios))
	for _, sc := range scenarios {
		opts.progress("%s: %s", sc.Name, sc.About)
		run, err := Follow(ctx, dp, opts, sc.Name)
		if err != nil && ctx.Err() != nil {
			return out, err
		}
		res := Judge(sc, run)
		if err != nil {
			res.Passed, res.Why = false, oneLine(err)
		}
		out = append(out, res)
	}
	return out, nil
}

func faultName(err error) string {
	var de *digipoort.Error
	if errors.As(err, &de) && de.Foutcode != "" {
		return de.Foutcode
	}
	return oneLine(err)
}

func withFoutcode(code string) string {
	if code == "" {
		return ""
	}
	return " (" + code + ")"
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
