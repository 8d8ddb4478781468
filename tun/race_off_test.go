//go:build !race && !skbdebug

package tun

const raceEnabled = false
