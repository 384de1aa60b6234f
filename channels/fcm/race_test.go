//go:build race

package fcm

const raceEnabled = true
