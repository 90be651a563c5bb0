//go:build !race

package digipoort

const raceDetector = false
