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
	mustCLI(t, "environments", "add", "gone")
	mustCLI(t, "environments", "remove", "gone")
	dir := t.TempDir()
	file := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := file("bad.xbrl", []byte("<xbrl><unclosed></xbrl>"))
	real, _ := os.ReadFile(vatReturn(t))
	truncated := file("truncated.xbrl", real[:len(real)/2])
	notXML := file("photo.xbrl", []byte("\x89PNG\r\n\x1a\n not a declaration"))
	empty := file("empty.xbrl", nil)
	invalidUTF8 := file("latin1.xbrl", []byte("<?xml version=\"1.0\"?><a>caf\xe9</a>"))
	huge := make([]byte, 20<<20+1)
	copy(huge, "<a>")
	big := file("big.xbrl", huge)
	q := func(extra ...string) []string {
		args := []string{"queue", "--env", "acme", "--type", "btw", "--subject", "001000044B37", "--period", "2026-01"}
		return append(args, extra...)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"queue", "--env", "nope", "--type", "btw", "--subject", "001000044B37", "--period", "2026", "--file", vatReturn(t)}, "environment \"nope\" does not exist"},
		{q("--file", bad), "not well-formed"},
		{q("--file", truncated), "not well-formed"},
		{q("--file", notXML), "not well-formed"},
		{q("--file", empty), "is empty"},
		{q("--file", invalidUTF8), "not valid UTF-8"},
		{q("--file", big), "over Digipoort's limit of 20971520 bytes"},
		{[]string{"queue", "--env", "gone", "--type", "btw", "--subject", "001000044B37", "--period", "2026", "--file", vatReturn(t)}, "was removed"},
		{[]string{"queue", "--env", "acme", "--type", "btw", "--subject", strings.Repeat("9", 36), "--period", "2026", "--file", vatReturn(t)}, "at most 35"},
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
