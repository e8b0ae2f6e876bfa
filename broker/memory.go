package broker

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"
)

// Memory is a HistoryBroker, PresenceBroker, BatchBroker and DedupBroker
// within one process (it remembers each room's last 65536 keys, for
// DedupWindow): it joins several Rooms
// (one per node of a simulated cluster, or one per Registry) as a network
// broker would join nodes. Tests use it, and hosts that run several
// registries in one process. It never loses a publication, and delivers each
// on the publisher's goroutine before Publish returns. It is safe for
// concurrent use; the zero value is not usable.
type Memory struct {
	keep int // kept publications per room
	now  func() time.Time

	mu     sync.Mutex // held while delivering, so every subscriber sees one order
	rooms  map[string]*memoryRoom
	closed bool
}

type memoryRoom struct {
	subs    []*memorySubscription
	last    uint64        // the last ID given; 0 before the first
	base    uint64        // IDs before this one are not this room's
	kept    []Publication // oldest first
	dropped uint64        // the last ID dropped from kept; 0 if none
	nodes   map[string]memoryPresence
	keys    map[string]uint64 // the keys taken, with the IDs they got
	taken   []memoryKey       // the keys taken, oldest first
}

// memoryKey is a key a room took, and when.
type memoryKey struct {
	key string
	at  time.Time
}

// maxMemoryKeys bounds the keys Memory remembers per room.
const maxMemoryKeys = 1 << 16

// duplicateLocked reports whether r took key within DedupWindow, and the ID
// it got then, forgetting the keys past the window. b.mu is held.
func (r *memoryRoom) duplicateLocked(key string, now time.Time) (uint64, bool) {
	for len(r.taken) > 0 && (len(r.taken) > maxMemoryKeys || now.Sub(r.taken[0].at) >= DedupWindow) {
		delete(r.keys, r.taken[0].key)
		r.taken = r.taken[1:]
	}
	id, ok := r.keys[key]
	return id, ok
}

// takeLocked records key, taken with ID id. b.mu is held.
func (r *memoryRoom) takeLocked(key string, id uint64, now time.Time) {
	if r.keys == nil {
		r.keys = make(map[string]uint64)
	}
	r.keys[key] = id
	r.taken = append(r.taken, memoryKey{key, now})
}

type memoryPresence struct {
	nicks   []string
	expires time.Time
}

type memorySubscription struct {
	b       *Memory
	room    string
	deliver func(Publication)
}

// NewMemory returns a broker that keeps the last keep publications of
// each room (at least 1) for History.
func NewMemory(keep int) *Memory {
	return &Memory{keep: max(keep, 1), now: time.Now, rooms: make(map[string]*memoryRoom)}
}

func (b *Memory) roomLocked(name string) *memoryRoom {
	r := b.rooms[name]
	if r == nil {
		base := uint64(max(b.now().UnixMilli(), 0)) + 1
		r = &memoryRoom{base: base, last: base - 1}
		b.rooms[name] = r
	}
	return r
}

// lock takes b.mu, unless ctx has ended or b is closed.
func (b *Memory) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Publish implements Broker.
func (b *Memory) Publish(ctx context.Context, room string, p Publication) error {
	return b.PublishBatch(ctx, room, []Publication{p})
}

// publishLocked numbers p if it is kept, keeps it, and delivers it, unless
// the room took its key already. It reports that, and the ID the first got.
// b.mu is held.
func (b *Memory) publishLocked(room string, p Publication) (first uint64, dup bool) {
	r := b.roomLocked(room)
	now := b.now()
	if p.Key != "" {
		if first, dup := r.duplicateLocked(p.Key, now); dup {
			return first, true
		}
	}
	p.ID = 0
	if p.Keep {
		r.last++
		p.ID = r.last
		if len(r.kept) == b.keep {
			r.dropped = r.kept[0].ID
			r.kept = slices.Delete(r.kept, 0, 1)
		}
		r.kept = append(r.kept, p)
	}
	if p.Key != "" {
		r.takeLocked(p.Key, p.ID, now)
	}
	for _, s := range r.subs {
		s.deliver(p)
	}
	return 0, false
}

// PublishBatch implements BatchBroker: ps are numbered and delivered
// together, with no other publication between them.
func (b *Memory) PublishBatch(ctx context.Context, room string, ps []Publication) error {
	_, err := b.PublishOnce(ctx, room, ps)
	return err
}

// PublishOnce implements DedupBroker.
func (b *Memory) PublishOnce(ctx context.Context, room string, ps []Publication) ([]Duplicate, error) {
	if err := b.lock(ctx); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	var dups []Duplicate
	for i, p := range ps {
		if first, dup := b.publishLocked(room, p); dup {
			dups = append(dups, Duplicate{Index: i, ID: first})
		}
	}
	return dups, nil
}

// Subscribe implements Broker.
func (b *Memory) Subscribe(ctx context.Context, room string, deliver func(Publication)) (Subscription, error) {
	if err := b.lock(ctx); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	s := &memorySubscription{b: b, room: room, deliver: deliver}
	r := b.roomLocked(room)
	r.subs = append(r.subs, s)
	return s, nil
}

// Unsubscribe implements Subscription.
func (s *memorySubscription) Unsubscribe() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if r := s.b.rooms[s.room]; r != nil {
		r.subs = slices.DeleteFunc(r.subs, func(o *memorySubscription) bool { return o == s })
	}
	return nil
}

// History implements HistoryBroker.
func (b *Memory) History(ctx context.Context, room string, after uint64) ([]Publication, bool, error) {
	if err := b.lock(ctx); err != nil {
		return nil, false, err
	}
	defer b.mu.Unlock()
	r := b.roomLocked(room)
	if after != 0 && (after > r.last || after+1 < r.base) {
		return slices.Clone(r.kept), false, nil
	}
	first := sort.Search(len(r.kept), func(i int) bool { return r.kept[i].ID > after })
	return slices.Clone(r.kept[first:]), after >= r.dropped, nil
}

// SetPresence implements PresenceBroker.
func (b *Memory) SetPresence(ctx context.Context, room, node string, nicknames []string, ttl time.Duration) error {
	if err := b.lock(ctx); err != nil {
		return err
	}
	defer b.mu.Unlock()
	r := b.roomLocked(room)
	if len(nicknames) == 0 {
		delete(r.nodes, node)
		return nil
	}
	if r.nodes == nil {
		r.nodes = make(map[string]memoryPresence)
	}
	r.nodes[node] = memoryPresence{nicks: slices.Clone(nicknames), expires: b.now().Add(ttl)}
	return nil
}

// Presence implements PresenceBroker.
func (b *Memory) Presence(ctx context.Context, room string) (map[string][]string, error) {
	if err := b.lock(ctx); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	now := b.now()
	nodes := make(map[string][]string)
	for node, p := range b.roomLocked(room).nodes {
		if now.Before(p.expires) {
			nodes[node] = slices.Clone(p.nicks)
		}
	}
	return nodes, nil
}

// Close ends every subscription; Publish, Subscribe and History then return
// ErrClosed.
func (b *Memory) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	clear(b.rooms)
	return nil
}
