package main

import (
	"os"
	"testing"

	"koerier/internal/testenv"
)

// TestMain stops the Temporal dev server the commands that signal workflows are tested
// against, if a test started it.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopTemporal()
	os.Exit(code)
}
