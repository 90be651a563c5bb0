//go:build race

package digipoort

// raceDetector: memory figures under the race detector say nothing (it shadows every
// allocation), and tens of MiB through it take minutes.
const raceDetector = true
