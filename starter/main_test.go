package main

import (
	"testing"

	"koerier/internal/testenv"
)

// TestMain stops the Temporal dev server the tests started (testenv.Main).
func TestMain(m *testing.M) { testenv.Main(m) }
