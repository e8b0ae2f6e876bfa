package chatroom

import (
	"strconv"
	"testing"

	"github.com/seed014c2c51/chatroom/broker"
)

// BenchmarkHeartbeatReconcile measures what one node spends on one
// heartbeat of a room of 100 nicknames over 10 nodes (10 on each): the
// digest a heartbeat carries when the views agree, and the full list a
// node sends when one disagrees or a node just subscribed.
//
//	go test -run '^$' -bench HeartbeatReconcile -benchtime 2000x
func BenchmarkHeartbeatReconcile(b *testing.B) {
	rm := New(WithBroker(broker.NewMemory(4)), WithPresence(), WithName("lobby"))
	c := rm.link.(*cluster)
	for i := range 10 {
		n := "local" + strconv.Itoa(i)
		rm.byNick[n] = []*Member{{id: uint64(i + 1)}}
		rm.nickSum.add(n)
	}
	fulls, digests := peerHeartbeats(9, 10)
	for _, full := range fulls {
		c.deliver(full)
	}
	for _, bc := range []struct {
		name string
		pubs []broker.Publication
	}{{"digest", digests}, {"full", fulls}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			// CPU time too: on a shared machine the wall time measures
			// the neighbours as well.
			cpu := cpuTime()
			for i := 0; b.Loop(); i++ {
				c.deliver(bc.pubs[i%len(bc.pubs)])
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			if len(c.peers.told) != 90 || len(c.peers.wants) != 0 {
				b.Fatalf("told %d nicknames, wants %v: the views disagree", len(c.peers.told), c.peers.wants)
			}
		})
	}
}

// peerHeartbeats returns the heartbeats of nodes other nodes, each with
// each nicknames of its own in the room: the full list each sends, and the
// digest of it.
func peerHeartbeats(nodes, each int) (fulls, digests []broker.Publication) {
	for node := range nodes {
		var sum digest
		var nicks []string
		for i := range each {
			n := "n" + strconv.Itoa(node) + "-" + strconv.Itoa(i)
			nicks = append(nicks, n)
			sum.add(n)
		}
		full := wire{Node: "node" + strconv.Itoa(node), Snapshot: true, Count: sum.Count, Hash: sum.Hash, Full: true, Nicks: nicks}
		fulls = append(fulls, broker.Publication{Data: full.encode()})
		beat := wire{Node: full.Node, Snapshot: true, Count: sum.Count, Hash: sum.Hash}
		digests = append(digests, broker.Publication{Data: beat.encode()})
	}
	return fulls, digests
}

// BenchmarkMembersFrame measures the members frame one joiner receives in
// a room of 1,500 and of 15,000 nicknames spread over 3 nodes, with
// WithPresenceDeltas' cap of DefaultMaxMembers: its cost should not grow
// with the room.
//
//	go test -run '^$' -bench MembersFrame -benchtime 200x
func BenchmarkMembersFrame(b *testing.B) {
	for _, size := range []int{1500, 15000} {
		b.Run("members="+strconv.Itoa(size), func(b *testing.B) {
			rm := New(WithBroker(broker.NewMemory(4)), WithPresenceDeltas(PresenceDeltas{}), WithName("lobby"))
			c := rm.link.(*cluster)
			for i := range size / 3 {
				m := &Member{id: uint64(i + 1), nickname: "local" + strconv.Itoa(i)}
				rm.mu.Lock()
				rm.indexNickLocked(m)
				rm.mu.Unlock()
			}
			for node := range 2 {
				w := wire{Node: "node" + strconv.Itoa(node), Snapshot: true, Full: true}
				var sum digest
				for i := range size / 3 {
					n := "n" + strconv.Itoa(node) + "-" + strconv.Itoa(i)
					w.Nicks = append(w.Nicks, n)
					sum.add(n)
				}
				w.Count, w.Hash = sum.Count, sum.Hash
				c.deliver(broker.Publication{Data: w.encode()})
			}
			b.ReportAllocs()
			for b.Loop() {
				rm.mu.Lock()
				msg := rm.membersLocked()
				rm.mu.Unlock()
				if len(msg.Members) != DefaultMaxMembers || msg.Count != size/3*3 {
					b.Fatalf("members frame lists %d of %d", len(msg.Members), msg.Count)
				}
			}
		})
	}
}
