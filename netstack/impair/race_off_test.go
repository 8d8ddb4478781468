//go:build !race && !skbdebug

package impair

const skbRecycles = true
