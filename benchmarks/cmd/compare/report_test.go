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
