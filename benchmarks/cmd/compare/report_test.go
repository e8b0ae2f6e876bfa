package main

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/load"
)

func TestReportRendering(t *testing.T) {
	rep := &Report{
		Started: time.Unix(0, 0), Impls: []string{"chatroom", "melody", "naive"},
		Scenarios: scenarios(true),
		Runs: []Run{
			{Impl: "chatroom", Scenario: "fanout", OK: true, Result: &load.Result{DeliveriesPerSec: 300000}},
			{Impl: "melody", Scenario: "fanout", OK: true, Result: &load.Result{DeliveriesPerSec: 150000}},
			{Impl: "naive", Scenario: "fanout", Error: "boom"},
			{Impl: "chatroom", Scenario: "slow", OK: true, Result: &load.Result{
				SlowMembers: []load.SlowReport{{Cut: true, CloseCode: 1008, CloseReason: "too slow", Received: 12}},
			}},
		},
	}
	md := markdown(rep)
	for _, want := range []string{"| chatroom | 300000 | 2.00 |", "| naive | FAILED |", `cut: 1008 "too slow", 12 msgs kept`, "naive / fanout failed: boom"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	svg := fanoutSVG(rep)
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
			}
			break
		}
	}
	if !strings.Contains(svg, "300,000") || !strings.Contains(svg, "failed") {
		t.Errorf("SVG lacks a value or the failure:\n%s", svg)
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestClusterTable(t *testing.T) {
	sc := Scenario{Name: "crossnode", Title: "cross-node", Variants: variants([]string{"none", "memory", "redis"}, 2)}
	rep := &Report{
		Started: time.Unix(0, 0), Impls: []string{"chatroom"}, Scenarios: []Scenario{sc},
		Runs: []Run{
			{Impl: "chatroom", Scenario: "crossnode", OK: true, Result: &load.Result{
				DeliveriesPerSec: 200000, Frames: 1000, Expected: 1000, ServerCPUSeconds: 0.5,
				Latency: load.Latency{P50: 1, P99: 4},
			}},
			{Impl: "chatroom-memory-2", Nodes: 2, Broker: "memory", Scenario: "crossnode", OK: true, Result: &load.Result{
				DeliveriesPerSec: 100000, Frames: 1000, Expected: 1000, ServerCPUSeconds: 0.5, BrokerCPUSeconds: 0.5,
				Latency: load.Latency{P50: 2, P99: 8}, Cross: &load.Split{Latency: load.Latency{P50: 3, P99: 9}},
			}},
			{Impl: "chatroom-redis-2", Nodes: 2, Broker: "redis", Scenario: "crossnode", Error: "no redis-server"},
		},
	}
	md := markdown(rep)
	for _, want := range []string{
		"| 1 node, no broker | 200000 | 1.00 | 1.00 / 4.00 | – | 0/1000 | 0 / 0 | 0.50 / 0.00 / 0.00 | 500.00 |",
		"| 2 nodes, memory | 100000 | 0.50 | 2.00 / 8.00 | 3.00 / 9.00 |",
		"| 2 nodes, redis | FAILED |",
		"chatroom-redis-2 / crossnode failed: no redis-server",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "| design | fan-out") {
		t.Errorf("markdown has the designs' table without their scenarios:\n%s", md)
	}
}

func TestStoreTable(t *testing.T) {
	vs := storeVariants([]string{"memory", "pg-durable"})
	rep := &Report{
		Started: time.Unix(0, 0), Impls: []string{"chatroom"},
		Scenarios: []Scenario{{Name: "fanout", Stores: vs}, {Name: "steady", Stores: vs}},
		Runs: []Run{
			{Impl: "chatroom", Scenario: "fanout", OK: true, Result: &load.Result{DeliveriesPerSec: 200000, Latency: load.Latency{P50: 1, P99: 2}}},
			{Impl: "chatroom", Scenario: "steady", OK: true, Result: &load.Result{Expected: 100, Latency: load.Latency{P50: 0.5, P99: 1}}},
			{Impl: "chatroom-store-memory", Store: "memory", Scenario: "fanout", OK: true, Result: &load.Result{
				DeliveriesPerSec: 100000, ServerCPUSeconds: 0.25, Latency: load.Latency{P50: 2, P99: 4}}},
			{Impl: "chatroom-store-memory", Store: "memory", Scenario: "steady", OK: true, Result: &load.Result{
				Expected: 100, Lost: 1, ServerCPUSeconds: 0.5, Latency: load.Latency{P50: 1, P99: 3}}},
			{Impl: "chatroom-store-pg-durable", Store: "pg-durable", Scenario: "fanout", Error: "no PostgreSQL"},
		},
	}
	md := markdown(rep)
	for _, want := range []string{
		"| none | 200000 | 1.00 | 1.00 / 2.00 | 0.50 / 1.00 | 0/100 | 0.00 / 0.00 |",
		"| memory | 100000 | 0.50 | 2.00 / 4.00 | 1.00 / 3.00 | 1/100 (1.00%) | 0.25 / 0.50 |",
		"| pg-durable | FAILED | FAILED | FAILED | – | – | FAILED / – |",
		"chatroom-store-pg-durable / fanout failed: no PostgreSQL",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestConnectionsTable(t *testing.T) {
	conns := func(rss, perSec float64, ms ...float64) *load.Result {
		return &load.Result{Members: 100, Connected: 100, RSSPerConnKiB: rss, Conns: &load.ConnsResult{
			ConnectPerSec: perSec, HeapPerConnKiB: 8, HeapLivePerConnKiB: 4, StackPerConnKiB: 2, BusyRSSPerConnKiB: rss + 1,
			GoroutinesPerConn: 1, ClientSockBusyKiB: 4,
			SockstatBusyKiB: 3.9, SlabPerConnKiB: 9.5, DeliveryMs: ms,
		}}
	}
	rep := &Report{
		Started: time.Unix(0, 0), Impls: []string{"chatroom", "gws", "naive"}, Repeat: 3,
		Scenarios: []Scenario{connectionsScenario(100, time.Minute)},
		Runs: []Run{
			{Impl: "chatroom", Scenario: "connections", Rep: 1, OK: true, Result: conns(12, 3000, 50, 60, 70)},
			{Impl: "chatroom", Scenario: "connections", Rep: 2, OK: true, Result: conns(11, 2000, 40, 41, 42)},
			{Impl: "chatroom", Scenario: "connections", Rep: 3, OK: true, Result: conns(13, 4000, 30, 31, 32)},
			{Impl: "gws", Scenario: "connections", Rep: 1, OK: true, Result: conns(9, 5000, 20)},
			{Impl: "naive", Scenario: "connections", Rep: 1, Error: "boom"},
		},
	}
	md := markdown(rep)
	for _, want := range []string{
		"## Idle connections",
		"| chatroom | 100/100 | 3000 (2000–4000) | 12.00 (11.00–13.00) / 13.00 (12.00–14.00) | 4.00 (4.00–4.00) / 6.00 (6.00–6.00) | 2.00 (2.00–2.00) | 1.00 (1.00–1.00) | 0.00 (0.00–0.00) / 0.00 (0.00–0.00) | 0.00 (0.00–0.00) / 4.00 (4.00–4.00) | 0.00 (0.00–0.00) / 3.90 (3.90–3.90) | 9.50 (9.50–9.50) | 60 (31–60) |",
		"| gws | 100/100 | 5000 | 9.00 / 10.00 | 4.00 / 6.00 | 2.00 | 1.00 | 0.00 / 0.00 | 0.00 / 4.00 | 0.00 / 3.90 | 9.50 | 20 |",
		"| naive | FAILED |",
		"- chatroom: 40, 41, 42; 50, 60, 70; 30, 31, 32 ms",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "| design | fan-out") {
		t.Errorf("markdown has the designs' table without their scenarios:\n%s", md)
	}
}
