package simulator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"koerier/digipoort"
	"koerier/digipoort/devcerts"
)

// persistDir is a directory with the mode tests' development PKI and no kept state.
func persistDir(t *testing.T) string {
	t.Helper()
	if _, _, err := devcerts.Ensure(modePKI); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	entries, err := os.ReadDir(modePKI)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), StateFile) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(modePKI, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func statusesOf(t *testing.T, c *digipoort.Client, kenmerk string) ([]digipoort.Status, error) {
	t.Helper()
	return c.Statuses(context.Background(), kenmerk, time.Time{}, time.Time{})
}

func requireUnknownKenmerk(t *testing.T, err error) {
	t.Helper()
	var de *digipoort.Error
	if !errors.As(err, &de) || de.Foutcode != "STS100" || !strings.Contains(de.Foutbeschrijving, "onbekend") {
		t.Fatalf("want STS100 kenmerk onbekend, got %v", err)
	}
}

// As Digipoort does, a simulator restarted on the same Dir with Persist still answers
// for the processes it started before: the same statuses at the same times, the reply
// still ready for pickup, a repeated delivery still recognised. Without it (the `make
// run` case before: the simulator restarted while Koerier's database still held a
// message in flight) the kenmerk is unknown, STS100.
func TestProcessesSurviveARestart(t *testing.T) {
	dir := persistDir(t)
	ctx := context.Background()
	s1, err := Start(ctx, Options{Dir: dir, Persist: true, StepInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c1 := modeClient(t, s1)
	resp, err := c1.Deliver(ctx, modeDelivery("Persist-1"))
	if err != nil {
		t.Fatal(err)
	}
	reply := pickupsOf(t, c1, resp.Kenmerk, 5*time.Second)
	before, err := statusesOf(t, c1, resp.Kenmerk)
	if err != nil || len(before) < 3 {
		t.Fatalf("statuses before the restart: %+v %v", before, err)
	}
	// Written on change, not only at Close: a simulator that is killed keeps it too.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, StateFile))
		if strings.Contains(string(b), resp.Kenmerk) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hold process %s after %s", StateFile, resp.Kenmerk, 5*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	// Without Persist, the same Dir keeps nothing: the kenmerk is unknown.
	forgetful := start(t, dir, Options{StepInterval: 5 * time.Millisecond})
	_, err = statusesOf(t, modeClient(t, forgetful), resp.Kenmerk)
	requireUnknownKenmerk(t, err)
	forgetful.Close()

	s2 := start(t, dir, Options{Persist: true, StepInterval: 5 * time.Millisecond})
	c2 := modeClient(t, s2)
	after, err := statusesOf(t, c2, resp.Kenmerk)
	if err != nil {
		t.Fatalf("statuses after the restart: %v", err)
	}
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("statuses after the restart differ:\n%+v\nbefore:\n%+v", after, before)
	}
	if got := pickupsOf(t, c2, resp.Kenmerk, time.Second); len(got) != 1 || got[0].Berichtkenmerk != reply[0].Berichtkenmerk ||
		string(got[0].Inhoud) != string(reply[0].Inhoud) {
		t.Fatalf("the reply after the restart: %+v, before: %+v", got, reply)
	}
	again, err := c2.Deliver(ctx, modeDelivery("Persist-1"))
	if err != nil || again.Kenmerk != resp.Kenmerk {
		t.Fatalf("a repeat after the restart: %+v %v, want the original kenmerk %s", again, err, resp.Kenmerk)
	}
	if d := s2.Deliveries("Persist-1"); d.Accepted != 1 || d.Duplicates != 1 || len(d.Processes) != 1 || d.Processes[0].Status != before[len(before)-1].Code {
		t.Fatalf("delivery counts after the restart: %+v", d)
	}

	// Reset forgets the kept processes too.
	s2.Reset()
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s3 := start(t, dir, Options{Persist: true, StepInterval: 5 * time.Millisecond})
	_, err = statusesOf(t, modeClient(t, s3), resp.Kenmerk)
	requireUnknownKenmerk(t, err)
}

// A state file that cannot be read stops the start rather than forgetting silently.
func TestUnreadableStateFileIsAnError(t *testing.T) {
	dir := persistDir(t)
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), Options{Dir: dir, Persist: true})
	if err == nil {
		s.Close()
		t.Fatal("started on an unreadable state file")
	}
	if !strings.Contains(err.Error(), "move the file away") {
		t.Fatalf("the error does not say what to do: %v", err)
	}
}
