package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"koerier/digipoort"
	"koerier/digipoort/simulator"
	"koerier/domain"
)

// The simulator imitates Logius' conformance environment; Koerier's expectations of
// Logius and the simulator's own description of each scenario must agree, or a
// conformance run against the simulator would prove nothing about Logius.
func TestScenariosAgreeWithTheSimulator(t *testing.T) {
	sim := map[string]simulator.Expectation{}
	for _, e := range simulator.Expectations() {
		if e.Logius {
			sim[string(e.Scenario)] = e
		}
	}
	if len(sim) != len(Scenarios()) {
		t.Errorf("the simulator has %d Logius scenarios, conformance %d", len(sim), len(Scenarios()))
	}
	for _, sc := range Scenarios() {
		e, ok := sim[sc.Name]
		if !ok {
			t.Errorf("%s: not a Logius scenario of the simulator", sc.Name)
			continue
		}
		switch {
		case sc.Expect.Refused:
			if e.Outcome != simulator.OutcomeRefused || e.DeliverFaultTransient {
				t.Errorf("%s: conformance expects a refusal, the simulator %+v", sc.Name, e)
			}
		case sc.Expect.StatusRefused:
			if e.StatusFault == "" || e.StatusFaultTransient {
				t.Errorf("%s: conformance expects a final status fault, the simulator %+v", sc.Name, e)
			}
		default:
			if string(e.Outcome) != string(sc.Expect.Final) {
				t.Errorf("%s: conformance expects %s, the simulator ends %s", sc.Name, sc.Expect.Final, e.Outcome)
			}
		}
	}
}

// fakeDigipoort answers from a script, for the judging logic only; the command's test
// runs every scenario against the simulator over mutual TLS.
type fakeDigipoort struct {
	deliverErrs []error
	statuses    [][]digipoort.Status
	statusErr   error
	delivered   int
	asked       int
}

func (f *fakeDigipoort) Deliver(context.Context, digipoort.DeliverRequest) (digipoort.DeliverResponse, error) {
	f.delivered++
	if len(f.deliverErrs) > 0 {
		err := f.deliverErrs[0]
		f.deliverErrs = f.deliverErrs[1:]
		return digipoort.DeliverResponse{}, err
	}
	return digipoort.DeliverResponse{Kenmerk: "K1"}, nil
}

func (f *fakeDigipoort) Statuses(context.Context, string, time.Time, time.Time) ([]digipoort.Status, error) {
	f.asked++
	if f.statusErr != nil {
		return nil, f.statusErr
	}
	i := min(f.asked-1, len(f.statuses)-1)
	return f.statuses[i], nil
}

func codes(cs ...string) []digipoort.Status {
	out := make([]digipoort.Status, len(cs))
	for i, c := range cs {
		out[i] = digipoort.Status{Code: c}
	}
	return out
}

func TestJudge(t *testing.T) {
	opts := Options{Poll: time.Millisecond, Timeout: time.Second}
	scenario := func(name string) Scenario {
		s, err := Lookup([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		return s[0]
	}
	gaveUp := append(codes("105", "100", "110", "200", "301", "301", "405", "420"), digipoort.Status{Code: "420", ErrorCode: "AFS600"})
	cases := []struct {
		name, scenario string
		dp             *fakeDigipoort
		passed         bool
		derived        domain.Status
	}{
		{"happy", "Happyflow", &fakeDigipoort{statuses: [][]digipoort.Status{codes("105"), codes("105", "100", "500")}}, true, domain.StatusAccepted},
		{"happy scenario ends rejected", "Happyflow", &fakeDigipoort{statuses: [][]digipoort.Status{codes("105", "510")}}, false, domain.StatusRejected},
		{"420 without AFS600 is not the end", "MaximaalAantalAfleverpogingen",
			&fakeDigipoort{statuses: [][]digipoort.Status{codes("105", "420"), gaveUp}}, true, domain.StatusFailed},
		{"refused", "AanleverFault", &fakeDigipoort{deliverErrs: []error{&digipoort.Error{Kind: digipoort.Final, Foutcode: "ALS100"}}}, true,
			domain.StatusSendFailed},
		{"a refusal where a transient fault was due fails", "OverbelastAanleveren",
			&fakeDigipoort{deliverErrs: []error{&digipoort.Error{Kind: digipoort.Final, Foutcode: "ALS100"}}}, false, domain.StatusSendFailed},
		{"overload retried", "OverbelastAanleveren", &fakeDigipoort{deliverErrs: []error{&digipoort.Error{Kind: digipoort.Transient, Foutcode: "ALS400"}},
			statuses: [][]digipoort.Status{codes("105", "500")}}, true, domain.StatusAccepted},
		{"status refused", "StatusInformatieFault", &fakeDigipoort{statusErr: &digipoort.Error{Kind: digipoort.Final, Foutcode: "STS100"}}, true,
			domain.StatusSent},
		{"still retrying at the time-out", "TechnischProbleemAfleveren", &fakeDigipoort{statuses: [][]digipoort.Status{codes("105", "405", "420")}},
			true, domain.StatusInProgress},
		{"no final status in time", "Happyflow", &fakeDigipoort{statuses: [][]digipoort.Status{codes("105", "405")}}, false, domain.StatusInProgress},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := opts
			if c.name == "still retrying at the time-out" || c.name == "no final status in time" {
				o.Timeout = 30 * time.Millisecond
			}
			run, err := Follow(context.Background(), c.dp, o, c.scenario)
			if err != nil {
				t.Fatal(err)
			}
			res := Judge(scenario(c.scenario), run)
			if res.Passed != c.passed || res.DerivedStatus != c.derived {
				t.Errorf("passed %v derived %s (%s); want %v %s", res.Passed, res.DerivedStatus, res.Why, c.passed, c.derived)
			}
		})
	}
}

func TestFollowStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dp := &fakeDigipoort{statuses: [][]digipoort.Status{codes("105")}}
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err := Follow(ctx, dp, Options{Poll: 5 * time.Millisecond, Timeout: time.Minute}, "Happyflow")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}
