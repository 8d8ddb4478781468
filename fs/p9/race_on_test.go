//go:build race || skbdebug

package p9

// raceEnabled: skb poisons freed buffers instead of pooling them (its
// debug mode), so allocation counts are meaningless.
const raceEnabled = true
