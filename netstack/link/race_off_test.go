//go:build !race && !skbdebug

package link

const skbRecycles = true
