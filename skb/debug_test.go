//go:build race || skbdebug

package skb

import "testing"

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s did not panic", what)
		}
	}()
	f()
}

// In debug builds (-race or -tags skbdebug) misuse is caught, never ignored.
func TestDebugDoubleFree(t *testing.T) {
	b := Alloc(10)
	b.Free()
	mustPanic(t, "double free", b.Free)
}

func TestDebugUseAfterFree(t *testing.T) {
	b := Alloc(10)
	b.Free()
	mustPanic(t, "Clone after free", func() { b.Clone() })
	mustPanic(t, "SetDestructor after free", func() { b.SetDestructor(&countingOwner{}) })
}

func TestDebugFreedDataIsPoisoned(t *testing.T) {
	b := Alloc(10)
	data := b.Put(4)
	copy(data, "live")
	b.Free()
	for _, c := range data {
		if c != poisonByte {
			t.Fatalf("freed data not poisoned: %q", data)
		}
	}
}

func TestDebugDoubleFreeOfClone(t *testing.T) {
	b := AllocFclone(100)
	c := b.Clone()
	c.Free()
	mustPanic(t, "double free of the fclone companion", c.Free)
	b.Free()
}

func TestDebugFreeWhileQueued(t *testing.T) {
	var q Queue
	b := Alloc(1)
	q.PushBack(b)
	mustPanic(t, "free while queued", b.Free)
	q.Unlink(b)
	b.Free()
}
