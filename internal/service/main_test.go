package service_test

import (
	"os"
	"testing"

	"koerier/internal/testenv"
)

// TestMain stops the package's Temporal dev server: without it every test run leaves
// one running.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopTemporal()
	os.Exit(code)
}
