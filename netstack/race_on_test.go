//go:build race || skbdebug

package netstack

// skbRecycles is false when skb poisons freed buffers instead of pooling
// them, so allocation counts are meaningless.
const skbRecycles = false
