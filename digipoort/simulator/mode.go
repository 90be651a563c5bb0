package simulator

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Mode is how closely the simulator imitates the real Digipoort. The zero value is the
// default mode: quick flows (Options.StepInterval), a repeated delivery de-duplicated,
// the aanleverkenmerk echoed in pickups. Those conveniences hide what a client must
// cope with against the real Digipoort, so Realistic turns them off; see the package
// documentation ("Realistic mode").
//
// A process keeps the mode it was delivered in: switching modes changes what happens
// to later deliveries, never the timing or the pickup of a process already started.
type Mode struct {
	// Realistic: no aanleverkenmerk in pickup results, status flows that take minutes
	// (RealisticTimings × Scale), and a repeated delivery starts a second process
	// with its own kenmerk, counted in DeliveryStats.Repeated.
	Realistic bool `json:"realistic"`
	// Scale is the fraction of real time the realistic timings take: 1 (the default
	// when 0) is real time, 0.01 runs a flow 100 times faster (a minute takes
	// 600ms). Must lie in (0, 1]. The default mode ignores it.
	Scale float64 `json:"scale"`
}

// normalize returns the mode with its defaults filled in, or why it is unusable.
func (m Mode) normalize() (Mode, error) {
	if m.Scale == 0 {
		m.Scale = 1
	}
	if math.IsNaN(m.Scale) || m.Scale <= 0 || m.Scale > 1 {
		return m, fmt.Errorf("scale must be a number greater than 0 and at most 1 (1 = real time, 0.01 = 100 times faster), not %v", m.Scale)
	}
	return m, nil
}

// scaled is an unscaled (real Digipoort) duration as this mode runs it.
func (m Mode) scaled(d time.Duration) time.Duration {
	return time.Duration(math.Round(float64(d) * m.Scale))
}

// Unscaled realistic timings: the time between a status and the one before it. Logius
// publishes no durations for the steps; its documentation says that sending "verloopt
// meestal direct" (Statussen en foutcodes Digipoort, v1.6, 2022) and that a delivery
// that fails with 420 is retried "voor een periode van 72 uur", after which it ends in
// 420 with AFS600 (metrokaart Digipoort, logius.nl; also ../shared/digipoort/NOTES.md).
// The values below are therefore a deliberately unhurried ordinary day, not
// measurements: long enough that a client polling right after a delivery sees only 105
// and must keep looking for minutes, and that a lost answer is looked up while the
// process is still running, which is exactly what the default mode's 0.3 s flows hide.
const (
	// realisticReceipt: 100 (aanleveren gelukt) about a minute after 105, which comes
	// with the aanleverResponse itself.
	realisticReceipt = time.Minute
	// realisticIntake: 110, 200 and 210 (Digipoort's own intake and authentication).
	realisticIntake = 20 * time.Second
	// realisticValidation: 301 or 311 (Digipoort's own validation), the second 301 half
	// that.
	realisticValidation = time.Minute
	// realisticHandOver: 405 (delivering to the authority has started).
	realisticHandOver = 30 * time.Second
	// realisticDelivered: 400 or a first 420 after 405.
	realisticDelivered = time.Minute
	// realisticUndeliverable: 410, after Digipoort's immediate attempts failed.
	realisticUndeliverable = 2 * time.Minute
	// realisticAuthority: the authority's verdict (500, 510) after 400: a VAT return
	// checked by the Belastingdienst, several minutes on an ordinary day.
	realisticAuthority = 4 * time.Minute
	// realisticRetryRecovered: after a 420 Digipoort retries; in the
	// TechnischProbleemAfleveren scenario a retry succeeds (400) an hour later.
	realisticRetryRecovered = time.Hour
	// realisticRetryLimit: Digipoort retries a 420 for 72 hours, then gives up with a
	// second 420 carrying AFS600 (MaximaalAantalAfleverpogingen).
	realisticRetryLimit = 72 * time.Hour
)

// realisticGap is the unscaled time between status st and the status before it.
func realisticGap(prev, st step) time.Duration {
	switch st.Code {
	case "100":
		return realisticReceipt
	case "110", "200", "210":
		return realisticIntake
	case "301", "311":
		if prev.Code == "301" {
			return realisticValidation / 2
		}
		return realisticValidation
	case "405":
		return realisticHandOver
	case "400":
		if prev.Code == "420" {
			return realisticRetryRecovered
		}
		return realisticDelivered
	case "410":
		return realisticUndeliverable
	case "420":
		if prev.Code == "420" {
			return realisticRetryLimit
		}
		return realisticDelivered
	case "500", "510":
		return realisticAuthority
	}
	return time.Minute
}

// realisticOffsets are the unscaled times of a flow's statuses after the delivery.
func realisticOffsets(flow []step) []time.Duration {
	out := make([]time.Duration, len(flow))
	for i := 1; i < len(flow); i++ {
		out[i] = out[i-1] + realisticGap(flow[i-1], flow[i])
	}
	return out
}

// StatusTiming is when a status of a flow comes, counted from the delivery.
type StatusTiming struct {
	Code  string   `json:"code"`
	After Duration `json:"after"`
}

// RealisticTimings lists the unscaled (real time) status times realistic mode uses
// for a scenario delivered with a known certificate: the happy flow is 105 at once,
// 100 after 1m, 110 1m20s, 200 1m40s, 301 2m40s, 301 3m10s, 405 3m40s, 400 4m40s and
// 500 after 8m40s.
func RealisticTimings(sc Scenario) []StatusTiming {
	flow := steps(sc, true)
	offs := realisticOffsets(flow)
	out := make([]StatusTiming, len(flow))
	for i, st := range flow {
		out[i] = StatusTiming{Code: st.Code, After: Duration(offs[i])}
	}
	return out
}

// SetMode switches the mode for later deliveries (see Mode). It is kept by Reset: the
// mode says which Digipoort the simulator imitates, and a reset between test runs
// must not quietly turn it back into the forgiving one.
func (s *Sim) SetMode(m Mode) error {
	m, err := m.normalize()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m != s.mode {
		s.log.WithField("realistic", m.Realistic).WithField("scale", m.Scale).Info("mode changed")
	}
	s.mode = m
	return nil
}

// Mode returns the current mode.
func (s *Sim) Mode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// FlowDuration is how long after its delivery a process of this scenario, delivered
// now with a known certificate, gets its last status and its reply for pickup: a
// test waits this long (plus polling slack) for a flow to end.
func (s *Sim) FlowDuration(sc Scenario) time.Duration {
	return s.Mode().flowDuration(sc, s.opts.StepInterval)
}

func (m Mode) flowDuration(sc Scenario, step time.Duration) time.Duration {
	flow := steps(sc, true)
	if m.Realistic {
		offs := realisticOffsets(flow)
		return m.scaled(offs[len(offs)-1])
	}
	return time.Duration(len(flow)-1) * step
}

// modeView is the JSON of GET /sim/mode: the mode and, read-only, how long each
// scenario's flow takes in it.
type modeView struct {
	Mode
	Flows map[Scenario]Duration `json:"flows"`
}

func (s *Sim) modeView() modeView {
	m := s.Mode()
	v := modeView{Mode: m, Flows: map[Scenario]Duration{}}
	for _, sc := range Scenarios() {
		if sc == AanleverFault {
			continue // no process, no flow
		}
		v.Flows[sc] = Duration(m.flowDuration(sc, s.opts.StepInterval))
	}
	return v
}

// modeRequest is the body of PUT /sim/mode. Realistic is required so that a body
// that misspells or forgets it is refused rather than read as "switch it off".
type modeRequest struct {
	Realistic *bool    `json:"realistic"`
	Scale     *float64 `json:"scale"`
	// Flows is accepted and ignored so that the body of GET /sim/mode can be sent back.
	Flows any `json:"flows"`
}

func (q modeRequest) mode() (Mode, error) {
	if q.Realistic == nil {
		return Mode{}, errors.New(`"realistic" (true or false) is required, e.g. {"realistic": true, "scale": 0.01}`)
	}
	m := Mode{Realistic: *q.Realistic, Scale: 1}
	if q.Scale != nil {
		if *q.Scale == 0 {
			// 0 would silently mean real time (the Go zero value); over HTTP say so.
			return Mode{}, errors.New("scale must be greater than 0 and at most 1 (1 = real time, 0.01 = 100 times faster); omit it for real time")
		}
		m.Scale = *q.Scale
	}
	return m.normalize()
}
