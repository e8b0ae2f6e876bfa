package chatroom

import (
	"iter"
	"slices"
)

// joinOrder keeps nicknames in the order of a key, the order they joined
// in, so that a list of them, or its first few, costs no sort: a nickname
// added with a key above the others is appended; one that leaves only
// leaves its entry stale, and the entries are compacted once the stale
// ones outnumber the live. Its owner says which entries are live.
type joinOrder struct {
	entries []orderEntry // by ascending key
	stale   int
}

type orderEntry struct {
	key  uint64
	name string
}

// add files name under key, in its place if key is not the largest.
func (o *joinOrder) add(key uint64, name string) {
	e := orderEntry{key, name}
	if n := len(o.entries); n == 0 || o.entries[n-1].key < key {
		o.entries = append(o.entries, e)
		return
	}
	i, _ := slices.BinarySearchFunc(o.entries, key, func(e orderEntry, k uint64) int { return cmpID(e.key, k) })
	o.entries = slices.Insert(o.entries, i, e)
}

// drop counts an entry that went stale, and compacts the entries when
// stale ones outnumber the live.
func (o *joinOrder) drop(live func(orderEntry) bool) {
	o.stale++
	if o.stale > 16 && o.stale > len(o.entries)/2 {
		o.entries = slices.DeleteFunc(o.entries, func(e orderEntry) bool { return !live(e) })
		o.stale = 0
	}
}

// all yields the live names in order.
func (o *joinOrder) all(live func(orderEntry) bool) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, e := range o.entries {
			if live(e) && !yield(e.name) {
				return
			}
		}
	}
}

// first appends to dst the first n live names (all if n <= 0).
func (o *joinOrder) first(dst []string, n int, live func(orderEntry) bool) []string {
	for name := range o.all(live) {
		if n > 0 && len(dst) >= n {
			break
		}
		dst = append(dst, name)
	}
	return dst
}
