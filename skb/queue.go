package skb

// Queue is a doubly linked list of skbs, threaded through the skbs
// themselves so that queueing never allocates. An skb is on at most one
// queue at a time. Queue does no locking: the socket or device that owns it
// does. Mirrors struct sk_buff_head and the __skb_queue_* helpers.
type Queue struct {
	head, tail *SKB
	qlen       int
	// Bytes is the sum of Len of the queued skbs, maintained for the callers
	// that need queue depth in bytes without walking it.
	bytes int
}

// Len returns the number of skbs queued (skb_queue_len).
func (q *Queue) Len() int { return q.qlen }

// Bytes returns the total packet length queued.
func (q *Queue) Bytes() int { return q.bytes }

// Empty reports whether the queue is empty (skb_queue_empty).
func (q *Queue) Empty() bool { return q.qlen == 0 }

// Peek returns the first skb without removing it, or nil (skb_peek).
func (q *Queue) Peek() *SKB { return q.head }

// PeekTail returns the last skb without removing it, or nil (skb_peek_tail).
func (q *Queue) PeekTail() *SKB { return q.tail }

// Next returns the skb after b on its queue, or nil (skb_queue_next).
func (b *SKB) Next() *SKB { return b.next }

// Prev returns the skb before b on its queue, or nil.
func (b *SKB) Prev() *SKB { return b.prev }

// OnQueue reports whether b is on some queue.
func (b *SKB) OnQueue() bool { return b.queue != nil }

func (q *Queue) link(b, prev, next *SKB) {
	if b.queue != nil {
		panic("skb: queueing an skb that is already on a queue")
	}
	b.queue = q
	b.prev, b.next = prev, next
	if prev == nil {
		q.head = b
	} else {
		prev.next = b
	}
	if next == nil {
		q.tail = b
	} else {
		next.prev = b
	}
	q.qlen++
	q.bytes += b.len
}

// PushBack appends b (__skb_queue_tail).
func (q *Queue) PushBack(b *SKB) { q.link(b, q.tail, nil) }

// PushFront prepends b (__skb_queue_head).
func (q *Queue) PushFront(b *SKB) { q.link(b, nil, q.head) }

// InsertAfter puts b right after at, which is on q (__skb_queue_after).
func (q *Queue) InsertAfter(at, b *SKB) { q.link(b, at, at.next) }

// InsertBefore puts b right before at, which is on q (__skb_queue_before).
func (q *Queue) InsertBefore(at, b *SKB) { q.link(b, at.prev, at) }

// Unlink removes b, which must be on q (__skb_unlink).
func (q *Queue) Unlink(b *SKB) {
	if b.queue != q {
		panic("skb: unlinking an skb from a queue it is not on")
	}
	if b.prev == nil {
		q.head = b.next
	} else {
		b.prev.next = b.next
	}
	if b.next == nil {
		q.tail = b.prev
	} else {
		b.next.prev = b.prev
	}
	b.next, b.prev, b.queue = nil, nil, nil
	q.qlen--
	q.bytes -= b.len
}

// PopFront removes and returns the first skb, or nil (__skb_dequeue).
func (q *Queue) PopFront() *SKB {
	b := q.head
	if b != nil {
		q.Unlink(b)
	}
	return b
}

// PopBack removes and returns the last skb, or nil (__skb_dequeue_tail).
func (q *Queue) PopBack() *SKB {
	b := q.tail
	if b != nil {
		q.Unlink(b)
	}
	return b
}

// Purge frees every skb on the queue (__skb_queue_purge).
func (q *Queue) Purge() {
	for b := q.PopFront(); b != nil; b = q.PopFront() {
		b.Free()
	}
}

// Splice moves every skb of from to the end of q, leaving from empty
// (skb_queue_splice_tail_init).
func (q *Queue) Splice(from *Queue) {
	for b := from.PopFront(); b != nil; b = from.PopFront() {
		q.PushBack(b)
	}
}

// Resized must be called after changing the length of an skb that is on a
// queue (for example by trimming it in place), so that Bytes stays right.
func (q *Queue) Resized(oldLen, newLen int) { q.bytes += newLen - oldLen }
