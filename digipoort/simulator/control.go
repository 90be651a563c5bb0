package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration string
// ("2s", "150ms"); a JSON number is taken as milliseconds.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("duration must be a string like \"2s\" or a number of milliseconds")
	}
	*d = Duration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}

// Rule injects one kind of fault: into the next Count requests, and after those
// with Probability (0..1, drawn from the seeded generator), at most Max times in
// total when Max > 0.
type Rule struct {
	Count       int      `json:"count,omitempty"`
	Probability float64  `json:"probability,omitempty"`
	Max         int      `json:"max,omitempty"`
	Delay       Duration `json:"delay,omitempty"` // Slow: the delay (default 2s); Timeout: how long to hang (default 10m)
	Injected    int      `json:"injected"`        // read-only: how often it fired
}

// FaultConfig is the fault injection of one operation (or "*" for every one). Per
// request the rules are tried in this order; at most one of HTTP500, Overload fires,
// and Slow can precede a normal or a Timeout answer:
//
//   - HTTP500: answer HTTP 500 with a plain-text body, nothing processed;
//   - Overload: answer the service's x400 "overbelast" SOAP fault (ALS400, STS400,
//     OPS400), nothing processed;
//   - Slow: wait Delay, then process and answer normally;
//   - Timeout: process the request (a delivery is accepted and counted), then do
//     not answer for Delay and break the connection off, so the client cannot know
//     whether it arrived;
//   - Tamper: change one byte of the signed response Body after signing;
//   - Truncate: send only the first half of the (signed) response;
//   - Unsigned: send the success response without WS-Security.
type FaultConfig struct {
	HTTP500  *Rule `json:"http500,omitempty"`
	Overload *Rule `json:"overload,omitempty"`
	Slow     *Rule `json:"slow,omitempty"`
	Timeout  *Rule `json:"timeout,omitempty"`
	Tamper   *Rule `json:"tamper,omitempty"`
	Truncate *Rule `json:"truncate,omitempty"`
	Unsigned *Rule `json:"unsigned,omitempty"`
}

// AllOperations as the operation of SetFaults applies to every operation (rules of
// the operation itself are tried first).
const AllOperations = "*"

// SetFaults replaces the fault injection of an operation (a WSDL operation name such
// as "aanleveren" or "getStatussenProces", or AllOperations).
func (s *Sim) SetFaults(op string, f FaultConfig) error {
	for _, r := range []*Rule{f.HTTP500, f.Overload, f.Slow, f.Timeout, f.Tamper, f.Truncate, f.Unsigned} {
		if r == nil {
			continue
		}
		if r.Probability < 0 || r.Probability > 1 || r.Count < 0 || r.Max < 0 || r.Delay < 0 {
			return errors.New("fault rule: probability must lie in [0,1]; count, max and delay must not be negative")
		}
		r.Injected = 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := f
	s.faults[op] = &c
	return nil
}

// ClearFaults removes the fault injection of the given operations (all when none are
// given).
func (s *Sim) ClearFaults(ops ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(ops) == 0 {
		s.faults = map[string]*FaultConfig{}
		return
	}
	for _, op := range ops {
		delete(s.faults, op)
	}
}

// Faults returns the current fault injection per operation.
func (s *Sim) Faults() map[string]FaultConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]FaultConfig{}
	for op, f := range s.faults {
		c := FaultConfig{}
		for _, pair := range [][2]**Rule{{&c.HTTP500, &f.HTTP500}, {&c.Overload, &f.Overload}, {&c.Slow, &f.Slow},
			{&c.Timeout, &f.Timeout}, {&c.Tamper, &f.Tamper}, {&c.Truncate, &f.Truncate}, {&c.Unsigned, &f.Unsigned}} {
			if *pair[1] != nil {
				r := **pair[1]
				*pair[0] = &r
			}
		}
		out[op] = c
	}
	return out
}

type injection struct {
	http500, overload, tamper, truncate, unsigned bool
	slow, timeout                                 time.Duration
}

func (s *Sim) fireLocked(r *Rule) bool {
	if r == nil || (r.Max > 0 && r.Injected >= r.Max) {
		return false
	}
	fire := false
	if r.Count > 0 {
		r.Count--
		fire = true
	} else if r.Probability > 0 {
		fire = s.rng.Float64() < r.Probability
	}
	if fire {
		r.Injected++
	}
	return fire
}

func (s *Sim) injections(op string) injection {
	s.mu.Lock()
	defer s.mu.Unlock()
	var inj injection
	for _, key := range []string{op, AllOperations} {
		f := s.faults[key]
		if f == nil {
			continue
		}
		if !inj.http500 && !inj.overload {
			inj.http500 = s.fireLocked(f.HTTP500)
		}
		if !inj.http500 && !inj.overload {
			inj.overload = s.fireLocked(f.Overload)
		}
		if inj.slow == 0 && s.fireLocked(f.Slow) {
			inj.slow = time.Duration(f.Slow.Delay)
			if inj.slow <= 0 {
				inj.slow = 2 * time.Second
			}
		}
		if inj.timeout == 0 && s.fireLocked(f.Timeout) {
			inj.timeout = time.Duration(f.Timeout.Delay)
			if inj.timeout <= 0 {
				inj.timeout = 10 * time.Minute
			}
		}
		inj.tamper = inj.tamper || s.fireLocked(f.Tamper)
		inj.truncate = inj.truncate || s.fireLocked(f.Truncate)
		inj.unsigned = inj.unsigned || s.fireLocked(f.Unsigned)
	}
	return inj
}

// controlHandler serves the control API; see the package documentation.
func (s *Sim) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sim/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "url": s.url, "mode": s.Mode()})
	})
	mux.HandleFunc("GET /sim/mode", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.modeView())
	})
	mux.HandleFunc("PUT /sim/mode", func(w http.ResponseWriter, r *http.Request) {
		var q modeRequest
		if !readJSON(w, r, &q) {
			return
		}
		m, err := q.mode()
		if err == nil {
			err = s.SetMode(m)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, s.modeView())
	})
	mux.HandleFunc("GET /sim/env", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		lines := s.Env()
		if r.URL.Query().Get("pfx") != "" {
			lines = s.EnvPFX()
		}
		io.WriteString(w, strings.Join(lines, "\n")+"\n")
	})
	mux.HandleFunc("GET /sim/deliveries", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"deliveries": s.AllDeliveries()})
	})
	mux.HandleFunc("GET /sim/deliveries/{aanleverkenmerk}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Deliveries(r.PathValue("aanleverkenmerk")))
	})
	mux.HandleFunc("GET /sim/calls", func(w http.ResponseWriter, r *http.Request) {
		calls := s.AllCalls()
		total := 0
		for _, n := range calls {
			total += n
		}
		writeJSON(w, http.StatusOK, map[string]any{"calls": calls, "total": total})
	})
	mux.HandleFunc("GET /sim/scenarios", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		overrides := make(map[string]Scenario, len(s.overrides))
		for k, v := range s.overrides {
			overrides[k] = v
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"scenarios": Scenarios(), "overrides": overrides})
	})
	mux.HandleFunc("PUT /sim/scenarios/{aanleverkenmerk}", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Scenario string `json:"scenario"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		sc, err := ParseScenario(body.Scenario)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		_ = s.SetScenario(r.PathValue("aanleverkenmerk"), sc)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /sim/scenarios/{aanleverkenmerk}", func(w http.ResponseWriter, r *http.Request) {
		s.ClearScenario(r.PathValue("aanleverkenmerk"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /sim/statuses/{aanleverkenmerk}", func(w http.ResponseWriter, r *http.Request) {
		var st InjectedStatus
		if !readJSON(w, r, &st) {
			return
		}
		if err := s.InjectStatus(r.PathValue("aanleverkenmerk"), st); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /sim/pickups", func(w http.ResponseWriter, r *http.Request) {
		var p Pickup
		if !readJSON(w, r, &p) {
			return
		}
		k, bk, err := s.AddPickup(p)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"kenmerk": k, "berichtkenmerk": bk})
	})
	mux.HandleFunc("GET /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"faults": s.Faults()})
	})
	mux.HandleFunc("PUT /sim/faults/{op}", func(w http.ResponseWriter, r *http.Request) {
		var f FaultConfig
		if !readJSON(w, r, &f) {
			return
		}
		if err := s.SetFaults(r.PathValue("op"), f); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /sim/faults/{op}", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults(r.PathValue("op"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /sim/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("the body is empty; send a JSON object")
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("invalid JSON body: %w", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
