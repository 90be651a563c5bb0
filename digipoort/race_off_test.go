//go:build !race

package digipoort_test

const raceEnabled = false
