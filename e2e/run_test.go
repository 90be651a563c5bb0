package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"koerier/internal/testdb"
)

// runScript is `make run` in a process group of its own, on free ports.
type runScript struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan error
}

func (r *runScript) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

func startRun(t *testing.T, env []string) *runScript {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join("..", "scripts", "run.sh"))
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r := &runScript{cmd: cmd, done: make(chan error, 1)}
	pr, pw, _ := os.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.mu.Lock()
			r.out.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
		}
	}()
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return r
}

func (r *runScript) waitFor(t *testing.T, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(r.output(), text) {
			return
		}
		select {
		case err := <-r.done:
			t.Fatalf("make run ended (%v) before %q:\n%s", err, text, r.output())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("make run did not print %q within %s:\n%s", text, timeout, r.output())
}

// ctrlC does what a terminal does on Ctrl-C: SIGINT to the foreground process group.
func (r *runScript) ctrlC(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("make run did not stop on Ctrl-C:\n%s", r.output())
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

func listening(port string) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 500*time.Millisecond)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// The README's run command on a fresh state: it starts everything (the API answering
// on the address it prints), the README's commands get a declaration accepted, a second
// `make run` beside it reuses the servers, and Ctrl-C stops what each started.
func TestMakeRunFollowsTheReadme(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the whole service")
	}
	state := t.TempDir()
	ports := map[string]string{
		"KOERIER_TEMPORAL_PORT":     freePort(t),
		"KOERIER_UI_PORT":           freePort(t),
		"KOERIER_SIM_PORT":          freePort(t),
		"KOERIER_SIM_CONTROL_PORT":  freePort(t),
		"KOERIER_API_PORT":          freePort(t),
		"KOERIER_METRICS_PORT":      freePort(t),
		"KOERIER_MAIL_SMTP_PORT":    freePort(t),
		"KOERIER_MAIL_IMAP_PORT":    freePort(t),
		"KOERIER_MAIL_WEB_PORT":     freePort(t),
		"KOERIER_BANK_PORT":         freePort(t),
		"KOERIER_BANK_CONTROL_PORT": freePort(t),
	}
	env := []string{"KOERIER_STATE_DIR=" + state, "KOERIER_DATABASE_URL=" + testdb.New(t)}
	for k, v := range ports {
		env = append(env, k+"="+v)
	}
	first := startRun(t, env)
	first.waitFor(t, "Koerier is running.", 4*time.Minute)
	if !strings.Contains(first.output(), "control API http://127.0.0.1:"+ports["KOERIER_BANK_CONTROL_PORT"]) {
		t.Errorf("the bank simulator's control API is not printed:\n%s", first.output())
	}
	if !strings.Contains(first.output(), "http://127.0.0.1:"+ports["KOERIER_UI_PORT"]) {
		t.Errorf("the Web UI address is not printed:\n%s", first.output())
	}
	// Everything the README says make run starts listens on the port it was given.
	for name, p := range ports {
		if !listening(p) {
			t.Errorf("%s %s does not listen after make run", name, p)
		}
	}
	if v := scrape(t, "http://127.0.0.1:"+ports["KOERIER_METRICS_PORT"]+"/metrics", "koerier_store_up"); v != 1 {
		t.Errorf("the worker's /metrics: koerier_store_up is %v, want 1", v)
	}
	apiURL := "http://127.0.0.1:" + ports["KOERIER_API_PORT"]
	if !strings.Contains(first.output(), "API:                 "+apiURL) {
		t.Errorf("the API's address is not printed beside the Web UI's:\n%s", first.output())
	}
	if resp, err := http.Get(apiURL + "/healthz"); err != nil {
		t.Errorf("the API does not answer: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("the API's /healthz answers %s", resp.Status)
		}
	}

	// The README's commands, with the environment make run wrote.
	for _, kv := range readEnvFile(t, filepath.Join(state, "env.sh")) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	if got := os.Getenv("KOERIER_API_URL"); got != apiURL {
		t.Errorf("env.sh sets KOERIER_API_URL=%q, want %s", got, apiURL)
	}
	mustCLI(t, "environments", "add", "demo")
	q := queue(t, "demo", "2021-10")
	deadline := time.Now().Add(60 * time.Second)
	for {
		mustCLI(t, "send-receive")
		mustCLI(t, "process")
		if envView(t, "demo")[q.Number].Status == "accepted" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not accepted within a minute: %+v", envView(t, "demo")[q.Number])
		}
		time.Sleep(time.Second)
	}

	// The README's payment order: the example, its execution date moved ahead, queued
	// for verkoop (which make run gave a user at the bank simulator), settled after a
	// few bank send/receives.
	number := queuedNumber(t, mustCLI(t, "queue", "--env", "verkoop", "--type", "payment", "--file", readmePayment(t), "--json"))
	deadline = time.Now().Add(60 * time.Second)
	for {
		mustCLI(t, "bank", "send-receive", "--env", "verkoop")
		var shown struct {
			Transactions []struct {
				Status string `json:"status"`
			} `json:"transactions"`
		}
		cliJSON(t, &shown, "show", fmt.Sprint(number))
		settled := len(shown.Transactions) == 2
		for _, tx := range shown.Transactions {
			settled = settled && tx.Status == "ACSC"
		}
		if settled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the README's payment order is not settled within a minute: %+v", shown)
		}
		time.Sleep(time.Second)
	}

	second := startRun(t, env)
	second.waitFor(t, "Koerier is running.", 2*time.Minute)
	if out := second.output(); !strings.Contains(out, "already answers") || !strings.Contains(out, "the bank simulator already answers") {
		t.Errorf("the second run must reuse the running servers:\n%s", out)
	}
	second.ctrlC(t)
	if !listening(ports["KOERIER_TEMPORAL_PORT"]) {
		t.Fatal("Ctrl-C on the second run stopped the first run's Temporal")
	}
	first.ctrlC(t)
	time.Sleep(time.Second)
	for name, p := range ports {
		if listening(p) {
			t.Errorf("%s %s still listens after Ctrl-C", name, p)
		}
	}
}

// readmePayment is the README's example payment order with its execution date moved
// three days ahead, as the README's sed does.
func readmePayment(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "internal", "demo", "example-pain001.xml"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "pain001.xml")
	doc := strings.Replace(string(b), "2026-12-01", time.Now().AddDate(0, 0, 3).Format("2006-01-02"), 1)
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func queuedNumber(t *testing.T, out string) int64 {
	t.Helper()
	var q struct {
		Number int64 `json:"number"`
	}
	if err := json.Unmarshal([]byte(out), &q); err != nil || q.Number == 0 {
		t.Fatalf("queue --json printed %q: %v", out, err)
	}
	return q.Number
}

func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "export ") {
			continue
		}
		kv := strings.TrimPrefix(line, "export ")
		k, v, _ := strings.Cut(kv, "=")
		v = strings.Trim(v, `"`)
		if strings.HasPrefix(v, "${") { // ${X:-default}
			if i := strings.Index(v, ":-"); i >= 0 {
				v = strings.TrimSuffix(v[i+2:], "}")
			}
		}
		out = append(out, k+"="+v)
	}
	return out
}
