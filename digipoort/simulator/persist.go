package simulator

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"koerier/digipoort/internal/wire"
)

// StateFile is the file in Options.Dir where a simulator with Options.Persist keeps its
// processes.
const StateFile = "state.json"

// Digipoort keeps its processes: a kenmerk it gave out is answered for (a long time),
// whatever happens to the client. A simulator restarted on the same state while
// Koerier's database still holds messages in flight must do the same, or every
// send/receive is refused "kenmerk onbekend" for them. What is kept: every process
// (its request without content, its answer, its scenario, flow and times, so that it
// reports the same statuses at the same times), the delivery counts, the messages ready
// for pickup and injected statuses. Not kept: the mode, scenario overrides, faults,
// overload state, call counts and the "nieuwe" bookkeeping of getNieuwe* (after a
// restart those answer everything again as new; a client drops what it has, as it must
// for Digipoort's own repeats).

// saveDelay coalesces the changes of a burst into one write: a load of thousands of
// deliveries writes a few files a second, not one per delivery.
const saveDelay = 100 * time.Millisecond

// saveSpacing spaces the writes of a large state: the next write waits at least this
// many times as long as the last one took, so that keeping the state costs at most
// about a tenth of a core however many processes it holds. Every write encodes the
// whole state: with a write every saveDelay, 1,000 deliveries spent 39 % of the
// simulator's CPU encoding it, and the cost grew with the square of the load. A
// simulator that is killed (not closed: Close writes once more) forgets at most the
// changes of the last wait.
const saveSpacing = 9

type savedState struct {
	Version   int                         `json:"version"`
	Processes []savedProcess              `json:"processes"`
	Stats     []DeliveryStats             `json:"stats"`
	Pickups   []savedPickup               `json:"pickups"`
	Injected  map[string][]InjectedStatus `json:"injected"`
}

type savedProcess struct {
	Kenmerk     string                `json:"kenmerk"`
	Req         wire.AanleverRequest  `json:"req"`
	Resp        wire.AanleverResponse `json:"resp"`
	Scenario    Scenario              `json:"scenario"`
	Steps       []step                `json:"steps"`
	Start       time.Time             `json:"start"`
	Step        time.Duration         `json:"step"`
	CertFP      string                `json:"cert_fp"`
	Aangeleverd time.Time             `json:"aangeleverd"`
	Realistic   bool                  `json:"realistic,omitempty"`
	Offsets     []time.Duration       `json:"offsets,omitempty"`
	Repeat      bool                  `json:"repeat,omitempty"`
	MessageID   string                `json:"message_id"`
	BDMessageID string                `json:"bd_message_id"`
	Inhoud      Content               `json:"inhoud"`
	Bijlagen    []Content             `json:"bijlagen,omitempty"`
}

type savedPickup struct {
	Bericht wire.BerichtResultaat `json:"bericht"`
	Tijd    time.Time             `json:"tijd"`
	CertFP  string                `json:"cert_fp,omitempty"`
}

func (s *Sim) statePath() string { return filepath.Join(s.opts.Dir, StateFile) }

// processKey is the idempotency key of a delivery in the default mode.
func processKey(q *wire.AanleverRequest) string {
	return strings.Join([]string{q.Berichtsoort, q.IdentiteitBelanghebbende.Type, q.IdentiteitBelanghebbende.Nummer, q.Aanleverkenmerk}, "\x00")
}

// changed notes that kept state changed; the saver writes it soon. Callers may hold mu.
func (s *Sim) changed() {
	if s.saveCh == nil {
		return
	}
	select {
	case s.saveCh <- struct{}{}:
	default: // a save is pending already and will see this change
	}
}

// saver writes the state after each burst of changes until the simulator closes.
func (s *Sim) saver() {
	defer s.wg.Done()
	wait := saveDelay
	for {
		select {
		case <-s.closing:
			return
		case <-s.saveCh:
		}
		select {
		case <-s.closing:
			return // Close saves once more
		case <-time.After(wait):
		}
		began := time.Now()
		if err := s.save(); err != nil {
			s.log.WithError(err).Error("simulator: cannot keep the processes; a restart forgets what was delivered since the last save")
		}
		wait = max(saveDelay, saveSpacing*time.Since(began))
	}
}

// save writes the state atomically: a temporary file in the same directory, synced,
// renamed over the old one, so a crash leaves the old state or the new, never half.
func (s *Sim) save() error {
	s.mu.Lock()
	st := s.snapshotLocked()
	s.mu.Unlock()
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode the state: %w", err)
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	tmp, err := os.CreateTemp(s.opts.Dir, StateFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", s.statePath(), err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; cleans up after a failure
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), s.statePath()); err != nil {
		return fmt.Errorf("replace %s: %w", s.statePath(), err)
	}
	return nil
}

func (s *Sim) snapshotLocked() savedState {
	st := savedState{Version: 1, Processes: make([]savedProcess, 0, len(s.order)), Stats: make([]DeliveryStats, 0, len(s.stats)),
		Pickups: make([]savedPickup, 0, len(s.pickups)), Injected: make(map[string][]InjectedStatus, len(s.injected))}
	for k, v := range s.injected {
		st.Injected[k] = append([]InjectedStatus(nil), v...) // encoded after mu is released
	}
	for _, p := range s.order {
		st.Processes = append(st.Processes, savedProcess{Kenmerk: p.kenmerk, Req: p.req, Resp: p.resp, Scenario: p.scenario, Steps: p.steps,
			Start: p.start, Step: p.step, CertFP: p.certFP, Aangeleverd: p.aangeleverd, Realistic: p.realistic, Offsets: p.offsets,
			Repeat: p.repeat, MessageID: p.messageID, BDMessageID: p.bdMessageID, Inhoud: p.inhoud, Bijlagen: p.bijlagen})
	}
	for _, k := range sortedKeys(s.stats) {
		c := *s.stats[k]
		c.Processes = nil // derived from the processes when asked
		st.Stats = append(st.Stats, c)
	}
	for _, pk := range s.pickups {
		st.Pickups = append(st.Pickups, savedPickup{Bericht: pk.BerichtResultaat, Tijd: pk.tijd, CertFP: pk.certFP})
	}
	return st
}

// load reads the state a previous run kept, if any. A file that cannot be read is an
// error rather than a fresh start: forgetting processes silently is what keeping them
// is for.
func (s *Sim) load() error {
	b, err := os.ReadFile(s.statePath())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the kept processes: %w", err)
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("read the kept processes from %s: %w (move the file away to start with none)", s.statePath(), err)
	}
	if st.Version != 1 {
		return fmt.Errorf("%s has version %d of the kept processes, this simulator reads version 1 (move the file away to start with none)",
			s.statePath(), st.Version)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range st.Processes {
		p := &process{kenmerk: sp.Kenmerk, req: sp.Req, resp: sp.Resp, scenario: sp.Scenario, steps: sp.Steps, start: sp.Start, step: sp.Step,
			certFP: sp.CertFP, aangeleverd: sp.Aangeleverd, realistic: sp.Realistic, offsets: sp.Offsets, repeat: sp.Repeat,
			messageID: sp.MessageID, bdMessageID: sp.BDMessageID, inhoud: sp.Inhoud, bijlagen: sp.Bijlagen}
		if len(p.steps) == 0 {
			return fmt.Errorf("%s: process %s has no statuses (move the file away to start with none)", s.statePath(), p.kenmerk)
		}
		if key := processKey(&p.req); p.req.Aanleverkenmerk != "" && s.byKey[key] == nil {
			s.byKey[key] = p
		}
		s.byKenmerk[p.kenmerk] = p
		s.order = append(s.order, p)
	}
	for i := range st.Stats {
		c := st.Stats[i]
		if c.Kenmerken == nil {
			c.Kenmerken = []string{}
		}
		s.stats[c.Aanleverkenmerk] = &c
	}
	for _, sp := range st.Pickups {
		s.pickups = append(s.pickups, &pickup{BerichtResultaat: sp.Bericht, tijd: sp.Tijd, certFP: sp.CertFP})
	}
	if st.Injected != nil {
		s.injected = st.Injected
	}
	s.log.WithFields(map[string]any{"processes": len(s.order), "pickups": len(s.pickups), "file": s.statePath()}).Info("kept processes loaded")
	return nil
}
