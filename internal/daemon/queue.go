package daemon

import (
	"sync"
	"time"
)

// Queue holds the requests waiting to be loaded: at most Max distinct ones. A request already
// waiting is not queued twice (it is coalesced: its waiters share one load). When the queue is
// full a request is dropped and the queue remembers that it overflowed, so the daemon rescans
// the devices instead: a flood of events costs at most Max entries of memory.
type Queue struct {
	max   int
	mu    sync.Mutex
	items []Item
	index map[string]int
	over  bool
	ready chan struct{}
}

// Item is one waiting request.
type Item struct {
	Request string
	Queued  time.Time // when it first arrived
	Merged  int       // how many later arrivals were coalesced into it
}

// NewQueue returns a queue of at most n (at least 1) distinct requests.
func NewQueue(n int) *Queue {
	return &Queue{max: max(n, 1), index: make(map[string]int), ready: make(chan struct{}, 1)}
}

// Push adds a request. It reports false when the request was dropped because the queue is full.
func (q *Queue) Push(req string, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if i, ok := q.index[req]; ok {
		q.items[i].Merged++
		return true
	}
	if len(q.items) >= q.max {
		q.over = true
		q.signal()
		return false
	}
	q.index[req] = len(q.items)
	q.items = append(q.items, Item{Request: req, Queued: now})
	q.signal()
	return true
}

// Overflow marks events as lost (the socket's ENOBUFS): the next Take reports it.
func (q *Queue) Overflow() {
	q.mu.Lock()
	q.over = true
	q.signal()
	q.mu.Unlock()
}

func (q *Queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Ready receives a value after Push or Overflow once there is something to Take.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Take empties the queue: the waiting requests in arrival order, and whether events were
// lost since the last Take.
func (q *Queue) Take() (items []Item, overflowed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	items, overflowed = q.items, q.over
	q.items, q.over = nil, false
	clear(q.index)
	return items, overflowed
}

// Pending reports whether a Take would return something: a request, or lost events.
func (q *Queue) Pending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) > 0 || q.over
}

// Len is the number of requests waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
