//go:build race

package digipoort_test

// raceEnabled: the race detector slows the 20 MiB round trip down tenfold.
const raceEnabled = true
