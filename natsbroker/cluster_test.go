package natsbroker_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/internal/serverproc"
	"github.com/seed014c2c51/chatroom/natsbroker"
)

// startCluster starts n servers on loopback that form one cluster, with
// clustered JetStream, and waits until each has a route to every other and
// JetStream has a leader that the others follow.
func startCluster(t *testing.T, n int) []*server.Server {
	t.Helper()
	// Clustered JetStream wants every server to know its routes from the
	// start, so the cluster ports are chosen before the servers start.
	ports := make([]int, n)
	var urls []string
	for i := range ports {
		ports[i] = freePort(t)
		urls = append(urls, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i]))
	}
	routes := server.RoutesFromStr(strings.Join(urls, ","))
	var servers []*server.Server
	for i := range n {
		servers = append(servers, startServer(t, &server.Options{
			ServerName: "s" + strconv.Itoa(i),
			Cluster:    server.ClusterOpts{Name: "chat", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
		}))
	}
	// Neither routes nor JetStream's election report when they are done.
	poll(t, "the cluster to form", 20*time.Millisecond, func() bool {
		ready, leader := true, false
		for _, s := range servers {
			ready = ready && s.NumRemotes() == n-1 && s.JetStreamIsCurrent()
			leader = leader || s.JetStreamIsLeader()
		}
		return ready && leader
	})
	return servers
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := serverproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// publishAll has every broker publish n publications "<i>:<k>" to room at
// once, even ones kept, and waits until they are done.
func publishAll[B broker.Broker](t *testing.T, brokers []B, room string, n int) {
	t.Helper()
	c := ctx(t)
	var wg sync.WaitGroup
	for i, b := range brokers {
		wg.Go(func() {
			for k := range n {
				p := broker.Publication{Keep: k%2 == 0, Data: fmt.Appendf(nil, "%d:%d", i, k)}
				if err := b.Publish(c, room, p); err != nil {
					t.Errorf("node %d: publish %d: %v", i, k, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// checkEachOnceInOrder checks that pubs hold the publications of
// publishAll, each exactly once, each publisher's in order, ignoring those
// whose data does not look like "<i>:<k>".
func checkEachOnceInOrder(t *testing.T, who string, pubs []broker.Publication, publishers, n int) {
	t.Helper()
	next := make([]int, publishers)
	for _, p := range pubs {
		var i, k int
		if _, err := fmt.Sscanf(string(p.Data), "%d:%d", &i, &k); err != nil {
			continue
		}
		if k != next[i] {
			t.Fatalf("%s: from node %d got %d, want %d", who, i, k, next[i])
		}
		if p.Keep != (k%2 == 0) {
			t.Fatalf("%s: %q has Keep %v", who, p.Data, p.Keep)
		}
		next[i]++
	}
	for i, got := range next {
		if got != n {
			t.Errorf("%s: got %d publications from node %d, want %d", who, got, i, n)
		}
	}
}

// fence has every broker publish a fence, and waits until every recorder
// has all of them: by then, each has all that was published before.
func fence[B broker.Broker](t *testing.T, brokers []B, recs []*recorder, room string) {
	t.Helper()
	for i, b := range brokers {
		publish(t, b, room, false, "fence "+strconv.Itoa(i))
	}
	for _, r := range recs {
		for i := range brokers {
			r.waitData(t, "fence "+strconv.Itoa(i))
		}
	}
}

func TestCoreCluster(t *testing.T) {
	servers := startCluster(t, 3)
	var (
		brokers []*natsbroker.Broker
		recs    []*recorder
	)
	for _, s := range servers {
		nc, _ := connect(t, s)
		b := newCore(t, nc)
		r, _ := subscribe(t, b, "room")
		brokers, recs = append(brokers, b), append(recs, r)
	}
	// A subscription's interest reaches the other servers a moment after
	// Subscribe returns, with no event to wait on: each node publishes
	// probes until every node has one of its probes.
	for i, b := range brokers {
		probe := "probe " + strconv.Itoa(i)
		poll(t, "node "+strconv.Itoa(i)+"'s probes to reach every node", 10*time.Millisecond, func() bool {
			if !slices.ContainsFunc(recs, func(r *recorder) bool { return !slices.Contains(datas(r.all()), probe) }) {
				return true
			}
			publish(t, b, "room", false, probe)
			return false
		})
	}
	const n = 300
	publishAll(t, brokers, "room", n)
	fence(t, brokers, recs, "room")
	for i, r := range recs {
		checkEachOnceInOrder(t, "node "+strconv.Itoa(i), r.all(), len(brokers), n)
	}
}

// In JetStream mode every node sees one order, the stream's, and a
// subscription gets what is published through another server as soon as
// Subscribe returns.
func TestJetStreamCluster(t *testing.T) {
	servers := startCluster(t, 3)
	cfg := natsbroker.JetStreamConfig{Replicas: 3, History: 50}
	var (
		brokers []*natsbroker.JetStreamBroker
		recs    []*recorder
	)
	for _, s := range servers {
		nc, _ := connect(t, s)
		b := newJS(t, nc, cfg)
		brokers = append(brokers, b)
	}
	// The first call creates the stream, replicated on the three servers.
	for i, b := range brokers {
		r, _ := subscribe(t, b, "room")
		recs = append(recs, r)
		// No probe needed: the next node publishes at once.
		room := "room" + strconv.Itoa(i)
		r2, _ := subscribe(t, b, room)
		publish(t, brokers[(i+1)%len(brokers)], room, true, "x")
		r2.waitData(t, "x")
	}

	const n = 100
	publishAll(t, brokers, "room", n)
	fence(t, brokers, recs, "room")
	var order []string
	for i, r := range recs {
		pubs := r.all()
		who := "node " + strconv.Itoa(i)
		checkEachOnceInOrder(t, who, pubs, len(brokers), n)
		checkIDs(t, who, pubs)
		if i == 0 {
			order = datas(pubs)
		} else if !slices.Equal(datas(pubs), order) {
			t.Errorf("%s saw another order than node 0", who)
		}
	}

	// Every node reads the same history: the last 50 kept publications.
	var kept []string
	for _, p := range recs[0].all() {
		if p.Keep {
			kept = append(kept, string(p.Data))
		}
	}
	kept = kept[len(kept)-cfg.History:]
	for i, b := range brokers {
		pubs, complete, err := b.History(ctx(t), "room", 0)
		if err != nil || complete || !slices.Equal(datas(pubs), kept) {
			t.Errorf("node %d: History = %d publications, %v, %v; want the last %d, false", i, len(pubs), complete, err, cfg.History)
		}
	}

	if err := brokers[0].SetPresence(ctx(t), "room", "node0", []string{"ann"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := brokers[2].Presence(ctx(t), "room")
	if err != nil || strings.Join(got["node0"], ",") != "ann" || len(got) != 1 {
		t.Errorf("Presence from another server = %v, %v", got, err)
	}
}
