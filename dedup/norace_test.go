//go:build !race

package dedup_test

// raceEnabled reports a -race build: its heap and timings are not
// representative.
const raceEnabled = false
