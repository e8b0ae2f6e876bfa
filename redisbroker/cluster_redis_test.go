package redisbroker

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedisCluster starts a Redis Cluster of three masters on loopback,
// without replicas, and returns their addresses.
func startRedisCluster(t *testing.T) []string {
	t.Helper()
	if os.Getenv("REDIS_URL") != "" {
		// The Cluster test needs servers of its own; it runs without
		// REDIS_URL when redis-server is on PATH.
		t.Skip("REDIS_URL set: skipping the Redis Cluster test")
	}
	ctx := context.Background()
	const nodes = 3
	var addrs []string
	var clients []*redis.Client
	for range nodes {
		s := startLocalRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
		addrs = append(addrs, s.addr())
		c := redis.NewClient(&redis.Options{Addr: s.addr()})
		t.Cleanup(func() { _ = c.Close() })
		clients = append(clients, c)
	}
	// Each master takes a third of the 16384 slots, then they meet.
	for i, c := range clients {
		lo, hi := i*16384/nodes, (i+1)*16384/nodes-1
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
		}
	}
	for _, c := range clients[1:] {
		host, port, _ := strings.Cut(addrs[0], ":")
		if err := c.ClusterMeet(ctx, host, port).Err(); err != nil {
			t.Fatalf("CLUSTER MEET: %v", err)
		}
	}
	// The nodes agree by gossip, with no event to wait for: poll, within a
	// deadline, until every node reports the cluster ok and a connected
	// link to every other. (Redis forwards a PUBLISH only over the links
	// that are up: publications made before would be lost.)
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for _, c := range clients {
		for {
			info, err := c.ClusterInfo(ctx).Result()
			var nodesInfo string
			if err == nil {
				nodesInfo, err = c.ClusterNodes(ctx).Result()
			}
			if err == nil && strings.Contains(info, "cluster_state:ok") && linked(nodesInfo, nodes) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cluster did not form: %v\n%s\n%s", err, info, nodesInfo)
			}
			<-tick.C
		}
	}
	return addrs
}

// linked reports whether CLUSTER NODES lists n nodes, each with its link
// connected.
func linked(clusterNodes string, n int) bool {
	lines := strings.Split(strings.TrimSpace(clusterNodes), "\n")
	if len(lines) != n {
		return false
	}
	for _, l := range lines {
		// id addr flags master ping-sent pong-recv epoch link-state slots...
		f := strings.Fields(l)
		if len(f) < 8 || f[7] != "connected" || strings.Contains(f[2], "handshake") {
			return false
		}
	}
	return true
}

// TestRedisCluster runs the broker on a ClusterClient: rooms whose keys
// live on different masters, one pub/sub connection for all of them.
func TestRedisCluster(t *testing.T) {
	addrs := startRedisCluster(t)
	newClient := func() *redis.ClusterClient {
		c := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: addrs, DialerRetries: 1, MaxRetries: -1, ContextTimeoutEnabled: true,
			DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	sub, pub := New(newClient()), New(newClient(), WithHistorySize(2))
	defer sub.Close()
	defer pub.Close()

	rooms := []string{"a", "b", "c", "d", "e", "", "日本語", "{x}"}
	recs := map[string]*recorder{}
	for _, room := range rooms {
		recs[room] = newRecorder()
		subscribe(t, sub, room, recs[room])
	}
	for _, room := range rooms {
		for _, keep := range []bool{false, true, true, true} {
			publish(t, pub, room, keep, room)
		}
	}
	for _, room := range rooms {
		var ids []uint64
		for range 4 {
			p := recs[room].next(t)
			if string(p.Data) != room {
				t.Fatalf("room %q got %q", room, p.Data)
			}
			if p.Keep {
				ids = append(ids, p.ID)
			}
		}
		got, complete := history(t, sub, room, ids[0])
		if len(got) != 2 || got[0] != ids[1] || got[1] != ids[2] || !complete {
			t.Errorf("room %q: History(%d) = %v, %v; want %v, true", room, ids[0], got, complete, ids[1:])
		}
		setPresence(t, pub, room, "node", time.Minute, "nick")
		if p := presence(t, sub, room); len(p["node"]) != 1 {
			t.Errorf("room %q: Presence = %v", room, p)
		}
	}
}
