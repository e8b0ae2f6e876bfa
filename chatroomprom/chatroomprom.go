// Package chatroomprom exports the counts of chatroom's rooms to Prometheus:
// it implements chatroom.Metrics with client_golang, on a registry the host
// passes in.
//
//	metrics, err := chatroomprom.New(prometheus.DefaultRegisterer)
//	if err != nil { ... }
//	room := chatroom.New(chatroom.WithMetrics(metrics))
//	http.Handle("/metrics", promhttp.Handler())
//
// A Registry's rooms share one Metrics through chatroom.WithRoomOptions.
// The metrics, all named chatroom_*:
//
//	chatroom_rooms                       gauge      rooms open
//	chatroom_connections                 gauge      WebSocket connections open (upgraded, joined or joining)
//	chatroom_connects_total              counter    connections upgraded
//	chatroom_disconnects_total{reason}   counter    connections ended, by chatroom.ReasonLabel
//	chatroom_messages_received_total     counter    client messages read and decoded
//	chatroom_frames_sent_total           counter    frames queued for members, one per member
//	chatroom_bytes_sent_total            counter    their bytes, WebSocket framing included
//	chatroom_broadcast_seconds           histogram  time to queue one broadcast for every member, under the room's lock
//	chatroom_member_queue_bytes          histogram  after each broadcast, the deepest member queue, in bytes
//	chatroom_resumes_total{result}       counter    reconnections with ?since=, result "exact" or "truncated"
//	chatroom_broker_publish_seconds      histogram  one call handing publications to the broker
//	chatroom_broker_published_total      counter    publications handed to the broker
//	chatroom_broker_errors_total{op}     counter    failed broker calls, op a chatroom.BrokerOp
//
// The reasons of chatroom_disconnects_total are the fixed set
// chatroom.ReasonLabels returns, the ops of chatroom_broker_errors_total
// chatroom's BrokerOp constants: every series exists from the start, at 0.
//
// No metric has a room label unless the host gives one with WithRoomLabel,
// a function that maps room names onto a set it bounds: a label per room
// of a Registry whose rooms users name would let them create series
// without end.
package chatroomprom

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/seed014c2c51/chatroom"
)

// Resume results, the values of chatroom_resumes_total's result label.
const (
	ResumeExact     = "exact"     // the client was replayed everything it missed
	ResumeTruncated = "truncated" // some of it was gone (it received a truncated notice)
)

// brokerOps are the values of chatroom_broker_errors_total's op label.
var brokerOps = []chatroom.BrokerOp{chatroom.BrokerPublish, chatroom.BrokerSubscribe,
	chatroom.BrokerUnsubscribe, chatroom.BrokerHistory, chatroom.BrokerPresence}

// Metrics is a chatroom.Metrics that exports to Prometheus. Make one with
// New; it is safe for concurrent use by any number of rooms.
type Metrics struct {
	roomLabel func(room string) string

	rooms, connections                        *prometheus.GaugeVec
	connects, received, frames, bytes, pubs   *prometheus.CounterVec
	disconnects, resumes, brokerErrors        *prometheus.CounterVec
	broadcastSeconds, queueBytes, publishSecs *prometheus.HistogramVec
}

// An Option configures New.
type Option func(*Metrics)

// WithRoomLabel adds a "room" label to every metric, whose value for a
// room is fn of its name (fn is called once per room, when it is made).
// fn must map the names onto a small set that it bounds, since every
// value is a series of every metric: for example the rooms the host
// created itself by name, and "other" for those its users name:
//
//	chatroomprom.WithRoomLabel(func(room string) string {
//		switch room {
//		case "lobby", "support":
//			return room
//		}
//		return "other"
//	})
func WithRoomLabel(fn func(room string) string) Option {
	return func(m *Metrics) { m.roomLabel = fn }
}

// New makes the metrics and registers them on reg. It fails if reg
// refuses one (a metric of the same name is registered already: make one
// Metrics per registry and share it).
func New(reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	m := &Metrics{}
	for _, opt := range opts {
		opt(m)
	}
	var room []string
	if m.roomLabel != nil {
		room = []string{"room"}
	}
	labels := func(extra ...string) []string { return append(extra, room...) }
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels())
	}
	counter := func(name, help string, extra ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels(extra...))
	}
	histogram := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels())
	}
	m.rooms = gauge("chatroom_rooms", "Rooms open.")
	m.connections = gauge("chatroom_connections", "WebSocket connections open: upgraded, joined or joining.")
	m.connects = counter("chatroom_connects_total", "WebSocket connections upgraded.")
	m.disconnects = counter("chatroom_disconnects_total", "WebSocket connections ended, by reason (chatroom.ReasonLabel).", "reason")
	m.received = counter("chatroom_messages_received_total", "Client messages read and decoded.")
	m.frames = counter("chatroom_frames_sent_total", "Frames queued for members, one per member.")
	m.bytes = counter("chatroom_bytes_sent_total", "Bytes of the frames queued for members, WebSocket framing included.")
	m.broadcastSeconds = histogram("chatroom_broadcast_seconds",
		"Time to queue one broadcast for every member of the node, with the room's lock held.",
		prometheus.ExponentialBuckets(1e-6, 4, 10)) // 1µs to 262ms
	m.queueBytes = histogram("chatroom_member_queue_bytes",
		"After each broadcast, the bytes queued for the member furthest behind.",
		prometheus.ExponentialBuckets(256, 4, 9)) // 256 B to 16 MiB; the default cut is at 4 MiB
	m.resumes = counter("chatroom_resumes_total", "Reconnections with ?since=: exact, or truncated (some of the history was gone).", "result")
	m.publishSecs = histogram("chatroom_broker_publish_seconds", "One call handing publications to the broker.",
		[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5})
	m.pubs = counter("chatroom_broker_published_total", "Publications handed to the broker.")
	m.brokerErrors = counter("chatroom_broker_errors_total", "Failed broker calls, by op.", "op")

	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("chatroomprom: %w", err)
		}
	}
	if m.roomLabel == nil {
		m.sink("") // every series of the unlabelled metrics, at 0
	}
	return m, nil
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.rooms, m.connections, m.connects, m.disconnects, m.received, m.frames,
		m.bytes, m.broadcastSeconds, m.queueBytes, m.resumes, m.publishSecs, m.pubs, m.brokerErrors}
}

// Room implements chatroom.Metrics: it counts the room in and returns its
// sink, bound to its label once, so that no event looks a series up.
func (m *Metrics) Room(name string) chatroom.RoomMetrics {
	s := m.sink(name)
	s.rooms.Inc()
	return s
}

// sink returns the series of the room named name, creating them.
func (m *Metrics) sink(name string) *roomSink {
	var room []string
	if m.roomLabel != nil {
		room = []string{m.roomLabel(name)}
	}
	lv := func(extra ...string) []string { return append(extra, room...) }
	s := &roomSink{
		rooms:            m.rooms.WithLabelValues(lv()...),
		connections:      m.connections.WithLabelValues(lv()...),
		connects:         m.connects.WithLabelValues(lv()...),
		received:         m.received.WithLabelValues(lv()...),
		frames:           m.frames.WithLabelValues(lv()...),
		bytes:            m.bytes.WithLabelValues(lv()...),
		broadcastSeconds: m.broadcastSeconds.WithLabelValues(lv()...),
		queueBytes:       m.queueBytes.WithLabelValues(lv()...),
		exact:            m.resumes.WithLabelValues(lv(ResumeExact)...),
		truncated:        m.resumes.WithLabelValues(lv(ResumeTruncated)...),
		publishSeconds:   m.publishSecs.WithLabelValues(lv()...),
		published:        m.pubs.WithLabelValues(lv()...),
		disconnects:      make(map[string]prometheus.Counter),
		brokerErrors:     make(map[chatroom.BrokerOp]prometheus.Counter),
	}
	for _, r := range chatroom.ReasonLabels() {
		s.disconnects[r] = m.disconnects.WithLabelValues(lv(r)...)
	}
	for _, op := range brokerOps {
		s.brokerErrors[op] = m.brokerErrors.WithLabelValues(lv(string(op))...)
	}
	return s
}

// roomSink is one room's chatroom.RoomMetrics: its series, looked up once.
// Every event is an atomic add or two.
type roomSink struct {
	rooms, connections                                  prometheus.Gauge
	connects, received, frames, bytes, exact, truncated prometheus.Counter
	published                                           prometheus.Counter
	broadcastSeconds, queueBytes, publishSeconds        prometheus.Observer
	disconnects                                         map[string]prometheus.Counter
	brokerErrors                                        map[chatroom.BrokerOp]prometheus.Counter
}

func (s *roomSink) Closed() { s.rooms.Dec() }

func (s *roomSink) Connected() {
	s.connections.Inc()
	s.connects.Inc()
}

func (s *roomSink) Disconnected(reason error) {
	s.connections.Dec()
	s.disconnects[chatroom.ReasonLabel(reason)].Inc()
}

func (s *roomSink) Received() { s.received.Inc() }

func (s *roomSink) Fanout(f chatroom.Fanout) {
	s.frames.Add(float64(f.Frames))
	s.bytes.Add(float64(f.Bytes))
	if f.Broadcast {
		s.broadcastSeconds.Observe(f.Took.Seconds())
		s.queueBytes.Observe(float64(f.DeepestQueue))
	}
}

func (s *roomSink) Resumed(truncated bool) {
	if truncated {
		s.truncated.Inc()
	} else {
		s.exact.Inc()
	}
}

func (s *roomSink) BrokerPublished(n int, took time.Duration) {
	s.published.Add(float64(n))
	s.publishSeconds.Observe(took.Seconds())
}

func (s *roomSink) BrokerFailed(op chatroom.BrokerOp, _ error) {
	if c, ok := s.brokerErrors[op]; ok {
		c.Inc()
	}
}
