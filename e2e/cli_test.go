package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"koerier/internal/testenv"
)

// Errors are one clear line and a non-zero exit, and say what to do.
func TestCommandLineErrors(t *testing.T) {
	testenv.NewStack(t, testenv.StackOptions{NoWorker: true})
	mustCLI(t, "environments", "add", "acme")
	bad := filepath.Join(t.TempDir(), "bad.xbrl")
	if err := os.WriteFile(bad, []byte("<xbrl><unclosed></xbrl>"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"queue", "--env", "nope", "--type", "btw", "--subject", "1", "--period", "2026", "--file", vatReturn(t)}, "environment \"nope\" does not exist"},
		{[]string{"queue", "--env", "acme", "--type", "btw", "--subject", "1", "--period", "2026", "--file", bad}, "not well-formed"},
		{[]string{"queue", "--env", "acme", "--type", "btw", "--subject", "1", "--period", "2026", "--file", "/no/such/file"}, "read /no/such/file"},
		{[]string{"queue", "--env", "acme", "--type", "zzz", "--subject", "1", "--period", "2026", "--file", vatReturn(t)}, "unknown message type"},
		{[]string{"queue", "--env", "acme", "--type", "btw", "--period", "2026", "--file", vatReturn(t)}, "required flag(s) \"subject\" not set"},
		{[]string{"status", "--env", "nope"}, "does not exist"},
		{[]string{"restore", "12345"}, "message 12345 does not exist"},
		{[]string{"restore", "x"}, "not a message number"},
		{[]string{"log", "--level", "W"}, "use I or F"},
		{[]string{"log", "--since", "yesterday"}, "--since"},
		{[]string{"cleanup", "--retention", "10d"}, "below the floor of 30 days"},
		{[]string{"environments", "add", "acme"}, "exists already"},
	}
	for _, c := range cases {
		out, err := cli(t, c.args...)
		if err == nil {
			t.Errorf("%v: want an error, got %q", c.args, out)
			continue
		}
		msg := strings.TrimSpace(out)
		if !strings.Contains(msg, c.want) {
			t.Errorf("%v: error %q lacks %q", c.args, msg, c.want)
		}
		if lines := strings.Count(msg, "\n"); lines > 2 {
			t.Errorf("%v: the error is %d lines: %q", c.args, lines+1, msg)
		}
	}
	var msgs []map[string]any
	cliJSON(t, &msgs, "messages")
	if len(msgs) != 0 {
		t.Errorf("a refused queue stored something: %v", msgs)
	}
}
