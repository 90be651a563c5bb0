package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"koerier/domain"
	"koerier/internal/testenv"
	"koerier/pipeline"
)

// Issue 14: a worker process SIGKILLed while it uploads a payment order — the bank
// simulator holds the upload after 512 bytes, so the kill lands mid-write — leaves a
// half-written .part at the bank that the bank never reads. Another worker takes over,
// finds and removes the half file, uploads the order whole, and the bank receives the
// MsgId exactly once; the order is settled without an operator.
func TestPaymentWorkerKilledMidUploadReachesTheBankOnce(t *testing.T) {
	const env, msgID = "betaler", "KILLED-MID-UPLOAD-1"
	began := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }

	s := testenv.NewStack(t, testenv.StackOptions{Bank: true, NoWorker: true})
	payer(t, s, env)
	uploads := filepath.Join(s.Bank.UserDir(env), "upload")

	// The worker as production runs it: its own process, configured by the stack's
	// KOERIER_* environment (which the test's environment holds, the secret key that
	// sealed the bank profile's private key included).
	dir := t.TempDir()
	w := &proc{name: "worker", args: []string{filepath.Join(binDir, "worker")}, log: filepath.Join(dir, "worker.log"),
		env: []string{"KOERIER_METRICS_ADDR=127.0.0.1:0"}}
	w.start(t)
	t.Cleanup(func() { w.signal(syscall.SIGKILL) })
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(w.log); err == nil {
				t.Logf("worker process log:\n%s", tail(string(b), 40))
			}
		}
	})

	// It registers the search attributes workflows are started with before it polls.
	testenv.Eventually(t, time.Minute, "the worker process polls the control queue", func() (bool, string) {
		d, err := s.Temporal.DescribeTaskQueue(context.Background(), pipeline.ControlQueue(s.Config.TaskQueue), enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err != nil {
			return false, err.Error()
		}
		return len(d.GetPollers()) > 0, fmt.Sprintf("no pollers; process running: %v", w.alive())
	})
	phase("worker process polling")

	s.Bank.HoldNext(1, 512, 2*time.Minute)
	q := queuePayment(t, s, env, examplePayment(t, s, "EXAMPLE-20261124-0001", msgID), "", "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Not waited for: it dispatches the order, whose upload the bank then holds.
	first, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: pipeline.BankRunID(env), TaskQueue: pipeline.ControlQueue(s.Config.TaskQueue)},
		pipeline.BankSendReceiveWorkflowType, pipeline.BankSendReceiveInput{Environment: env, Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "the bank holds the worker's upload", func() (bool, string) {
		return s.Bank.Holding() == 1, "holding " + strings.Join(s.Bank.Files(env).Holding, ", ")
	})
	phase("upload held by the bank")
	if got := partials(t, uploads); len(got) != 1 || got[0].size != 512 {
		t.Fatalf("while held, the upload folder should hold one .part of 512 bytes: %+v", got)
	}
	if !w.alive() {
		t.Fatal("the worker process is not running while its upload is held")
	}

	w.signal(syscall.SIGKILL)
	phase("worker process killed")
	testenv.Eventually(t, 10*time.Second, "the bank sees the upload's connection end", func() (bool, string) {
		return s.Bank.Holding() == 0, "still holding " + strings.Join(s.Bank.Files(env).Holding, ", ")
	})
	if got := partials(t, uploads); len(got) != 1 || got[0].size != 512 {
		t.Fatalf("after the kill the half-written .part should stay: %+v", got)
	}
	if n := s.Bank.Received(env, msgID); n != 0 {
		t.Fatalf("the bank consumed a file the killed worker never finished (%d times)", n)
	}

	s.StartWorker()
	phase("second worker started")
	testenv.Eventually(t, 3*time.Minute, "the bank receives the file from the second worker", func() (bool, string) {
		m := messageStatus(t, s, q.Number)
		return s.Bank.Received(env, msgID) > 0, string(m.Status) + " " + m.NeedsActionReason
	})
	phase("file received by the bank")
	m := untilPayment(t, s, env, q.Number, domain.StatusAccepted)
	phase("payment order settled")

	if n := s.Bank.Received(env, msgID); n != 1 {
		t.Errorf("the bank received %s %d times, want exactly 1", msgID, n)
	}
	if got := partials(t, uploads); len(got) != 0 {
		t.Errorf("a .part is left at the bank: %+v", got)
	}
	if m.NeedsAction {
		t.Errorf("the order needs action after a recovered upload: %s", m.NeedsActionReason)
	}
	for id, tx := range transactions(t, s, q.Number) {
		if tx.Status != "ACSC" {
			t.Errorf("transaction %s: %+v, want settled", id, tx)
		}
	}
	if err := first.Get(ctx, nil); err != nil {
		// The run the killed worker began is finished by the second one; how it ended
		// says nothing about the order, so it is only shown.
		t.Logf("the first bank send/receive (begun by the killed worker): %v", err)
	}
}

type partFile struct {
	name string
	size int64
}

// partials lists the .part files in a bank upload folder.
func partials(t *testing.T, dir string) []partFile {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []partFile
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".part") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, partFile{e.Name(), fi.Size()})
	}
	return out
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
