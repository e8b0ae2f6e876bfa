package chatroomprom_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/chatroomprom"
	"github.com/seed014c2c51/chatroom/chatroomtest"
)

// scrape gathers reg as a Prometheus server would and returns every sample
// as `name{label="value",...}` (labels sorted), histograms by their _count.
func scrape(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := f.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[strings.Replace(key, f.GetName(), f.GetName()+"_count", 1)] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// frameID returns the ID of an envelope frame.
func frameID(t *testing.T, raw string) uint64 {
	t.Helper()
	var m struct{ ID uint64 }
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// A scripted session with real clients in a Registry of two rooms, and
// the exact counts a Prometheus server scrapes: the lobby (its own room
// label) with joins, messages, a bad frame and two resumes, one exact and
// one truncated; "flood" (label "other") with a member cut as too slow.
func TestScriptedSession(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	metrics, err := chatroomprom.New(reg, chatroomprom.WithRoomLabel(func(room string) string {
		if room == "lobby" {
			return room
		}
		return "other"
	}))
	if err != nil {
		t.Fatal(err)
	}
	rooms := chatroom.NewRegistry(chatroom.WithRoomOptions(func(name string) []chatroom.Option {
		opts := []chatroom.Option{chatroom.WithMetrics(metrics), chatroom.WithKeepalive(chatroom.Off, 0)}
		if name == "lobby" {
			return append(opts, chatroom.WithEnvelope(), chatroom.WithHistory(chatroom.History{Len: 2}))
		}
		return append(opts, chatroom.WithNotices(), chatroom.WithSendQueue(64, 4<<20))
	}))
	// The test shuts the registry down itself, before it scrapes.
	srv := chatroomtest.NewServer(t, http.HandlerFunc(chatroomtest.Mount("/rooms/{room}/chat", rooms).ServeHTTP))
	lobby := chatroomtest.Path("/rooms/lobby/chat")

	var sent int // bytes of the frames the lobby's clients received, on the wire
	next := func(c *chatroomtest.Client) string {
		raw := c.NextRaw()
		sent += 2 + len(raw) // a WebSocket frame's header is 2 bytes below 126
		if len(raw) >= 126 {
			t.Fatalf("frame of %d bytes: its header is not 2 bytes", len(raw))
		}
		return raw
	}

	ann := srv.Connect("ann", lobby)
	bob := srv.Connect("bob", lobby)
	now := scrape(t, reg)
	if now[`chatroom_connections{room="lobby"}`] != 2 || now[`chatroom_rooms{room="lobby"}`] != 1 {
		t.Errorf("with ann and bob joined: connections %v, rooms %v; want 2 and 1",
			now[`chatroom_connections{room="lobby"}`], now[`chatroom_rooms{room="lobby"}`])
	}

	ann.Send("hello")
	hello := frameID(t, next(ann))
	next(bob)
	bob.SendRaw(websocket.MessageText, []byte("not json"))
	bob.ExpectClose(websocket.StatusInvalidFramePayloadData)

	bob = srv.Connect("bob", lobby, chatroomtest.Query("since", strconv.FormatUint(hello, 10))) // exact: nothing missed
	for _, text := range []string{"2", "3", "4"} {
		ann.Send(text)
		next(ann)
		next(bob)
	}
	// The history keeps 2 messages: "2" is gone.
	carl := srv.Connect("carl", lobby, chatroomtest.Query("since", strconv.FormatUint(hello, 10)))
	var notice struct{ Type chatroom.MessageType }
	if raw := next(carl); json.Unmarshal([]byte(raw), &notice) != nil || notice.Type != chatroom.TypeTruncated {
		t.Fatalf("carl's first frame: %s, want a truncated notice", raw)
	}
	ann.Close()

	// The flood room: sender sends 16 KiB messages, each after the echo of
	// the last, until slow, which never reads, is cut.
	flood := chatroomtest.Path("/rooms/flood/chat")
	sender := srv.Connect("sender", flood)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	slow, _, err := websocket.Dial(ctx, srv.URL+"/rooms/flood/chat?nickname=slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	sender.NextFunc(func(m chatroom.Message) bool { return m.Type == chatroom.TypeJoin && m.Nickname == "slow" })
	text := strings.Repeat("x", 16<<10)
	floods, cut := 0, false
	for !cut && floods < 4000 {
		sender.Send(text)
		floods++
		for {
			m := sender.Next()
			if m.Type == chatroom.TypeLeave && m.Nickname == "slow" {
				cut = true
			}
			if m.Type == chatroom.TypeMessage { // its echo: the room has counted it
				break
			}
		}
	}
	if !cut {
		t.Fatalf("slow was not cut after %d messages of 16 KiB", floods)
	}

	shutdown, cancelShutdown := context.WithTimeout(context.Background(), time.Minute)
	defer cancelShutdown()
	if err := rooms.Shutdown(shutdown); err != nil {
		t.Fatal(err)
	}
	got := scrape(t, reg)

	want := map[string]float64{
		`chatroom_rooms{room="lobby"}`:                               0,
		`chatroom_connections{room="lobby"}`:                         0,
		`chatroom_connects_total{room="lobby"}`:                      4, // ann, bob twice, carl
		`chatroom_disconnects_total{reason="invalid",room="lobby"}`:  1,
		`chatroom_disconnects_total{reason="normal",room="lobby"}`:   1, // ann
		`chatroom_disconnects_total{reason="shutdown",room="lobby"}`: 2, // bob, carl
		`chatroom_messages_received_total{room="lobby"}`:             4,
		`chatroom_frames_sent_total{room="lobby"}`:                   2 + 3*2 + 1, // hello, 2 3 4 to two, carl's notice
		`chatroom_broadcast_seconds_count{room="lobby"}`:             4,
		`chatroom_member_queue_bytes_count{room="lobby"}`:            4,
		`chatroom_resumes_total{result="exact",room="lobby"}`:        1,
		`chatroom_resumes_total{result="truncated",room="lobby"}`:    1,
		`chatroom_broker_published_total{room="lobby"}`:              0,
		`chatroom_broker_publish_seconds_count{room="lobby"}`:        0,

		`chatroom_rooms{room="other"}`:                               0,
		`chatroom_connections{room="other"}`:                         0,
		`chatroom_connects_total{room="other"}`:                      2,
		`chatroom_disconnects_total{reason="slow",room="other"}`:     1,
		`chatroom_disconnects_total{reason="shutdown",room="other"}`: 1,
		`chatroom_messages_received_total{room="other"}`:             float64(floods),
	}
	for _, r := range chatroom.ReasonLabels() {
		for _, room := range []string{"lobby", "other"} {
			k := fmt.Sprintf(`chatroom_disconnects_total{reason=%q,room=%q}`, r, room)
			if _, ok := want[k]; !ok {
				want[k] = 0
			}
		}
	}
	for _, op := range []string{"publish", "subscribe", "unsubscribe", "history", "presence"} {
		want[fmt.Sprintf(`chatroom_broker_errors_total{op=%q,room="lobby"}`, op)] = 0
	}
	// The bytes: every frame the lobby's clients read live, with its
	// WebSocket header.
	want[`chatroom_bytes_sent_total{room="lobby"}`] = float64(sent)
	picked := make(map[string]float64)
	for k := range want {
		picked[k] = got[k]
	}
	if diff := cmp.Diff(want, picked); diff != "" {
		t.Errorf("scraped (-want +got):\n%s", diff)
	}
	if !slices.Contains(chatroom.ReasonLabels(), chatroom.ReasonSlow) {
		t.Error("ReasonLabels lacks slow")
	}
}
