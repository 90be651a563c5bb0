package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/internal/testenv"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "koerier-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, pkg := range []string{"starter", "worker"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, pkg), "koerier/"+pkg)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	testenv.StopTemporal()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs `starter args...` with the stack's environment, as an operator would.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "starter"), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String() + errOut.String(), fmt.Errorf("starter %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cli(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := mustCLI(t, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("starter %s --json printed %q: %v", strings.Join(args, " "), out, err)
	}
}

// vatReturn is the real VAT return from ../shared when it is there, else the demo
// XBRL of the same shape that `make run` also falls back to.
func vatReturn(t *testing.T) string {
	t.Helper()
	real := filepath.Join("..", "..", "shared", "digipoort", "fixtures", "omzetbelasting-2021.xbrl")
	if _, err := os.Stat(real); err == nil {
		return real
	}
	return filepath.Join("..", "internal", "demo", "omzetbelasting-demo.xbrl")
}

// ak is the aanleverkenmerk of a message's first delivery, as the simulator counts
// deliveries and chooses scenarios by it.
func ak(number int64) string {
	return domain.Aanleverkenmerk(domain.DefaultAanleverkenmerkPrefix, number, 1)
}
