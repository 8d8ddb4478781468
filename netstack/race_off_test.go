//go:build !race && !skbdebug

package netstack

// skbRecycles is true when freed skbs go back to their caches.
const skbRecycles = true
