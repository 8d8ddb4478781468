//go:build !race && !skbdebug

package p9

const raceEnabled = false
