package natsbroker

import (
	"encoding/base64"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed014c2c51/chatroom/broker"
)

func TestRoomToken(t *testing.T) {
	// One subject token, also a valid key-value key part, and reversible.
	valid := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	seen := map[string]string{}
	for _, room := range []string{"", "a", "a.b", "a.b.", "*", ">", "日本語", "a b", "\x00", "ra", "r"} {
		tok := roomToken(room)
		if !valid.MatchString(tok) {
			t.Errorf("roomToken(%q) = %q: not a safe token", room, tok)
		}
		if other, ok := seen[tok]; ok {
			t.Errorf("rooms %q and %q share token %q", room, other, tok)
		}
		seen[tok] = room
		if b, err := base64.RawURLEncoding.DecodeString(tok[1:]); err != nil || string(b) != room {
			t.Errorf("roomToken(%q) = %q does not decode back", room, tok)
		}
	}
}

func TestWholeSeconds(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		0: time.Second, time.Millisecond: time.Second, time.Second: time.Second,
		1001 * time.Millisecond: 2 * time.Second, 15 * time.Second: 15 * time.Second,
	} {
		if got := wholeSeconds(in); got != want {
			t.Errorf("wholeSeconds(%v) = %v, want %v", in, got, want)
		}
	}
}

// fakeMsg is a consumer's message with the sequences given.
type fakeMsg struct {
	jetstream.Msg
	subject          string
	stream, consumer uint64
}

func (m fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: m.stream, Consumer: m.consumer}}, nil
}
func (m fakeMsg) Data() []byte    { return []byte(m.subject) }
func (m fakeMsg) Subject() string { return m.subject }

// A message out of the consumer's sequence (one went missing on the way)
// is not delivered, nor any after it from that consumer; the subscription
// asks for a new consumer, resuming after the last delivered.
func TestHandlerGap(t *testing.T) {
	var got []broker.Publication
	c, _ := newConfig(nil)
	s := &jsSubscription{
		jb:      &JetStreamBroker{b: &base{config: c}},
		subj:    c.subjects("room"),
		deliver: func(p broker.Publication) { got = append(got, p) },
		gen:     1,
		reset:   make(chan struct{}, 1),
	}
	h := s.handler(1)
	h(fakeMsg{subject: s.subj.kept, stream: 10, consumer: 1})
	h(fakeMsg{subject: s.subj.live, stream: 11, consumer: 2})
	h(fakeMsg{subject: s.subj.kept, stream: 15, consumer: 4}) // 3 is missing
	h(fakeMsg{subject: s.subj.kept, stream: 16, consumer: 5})
	s.handler(0)(fakeMsg{subject: s.subj.kept, stream: 17, consumer: 3}) // an old consumer's
	want := []broker.Publication{{ID: 10, Keep: true, Data: []byte(s.subj.kept)}, {Data: []byte(s.subj.live)}}
	if len(got) != len(want) || got[0].ID != 10 || !got[0].Keep || got[1].ID != 0 || got[1].Keep {
		t.Errorf("delivered %+v, want %+v", got, want)
	}
	if s.next != 12 {
		t.Errorf("resumes from %d, want 12", s.next)
	}
	select {
	case <-s.reset:
	default:
		t.Error("no reset requested")
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		v         string
		ok, known bool
	}{
		{"2.9.10", false, true},
		{"2.10.29", false, true},
		{"2.11.0", true, true},
		{"2.11.0-RC.1", true, true},
		{"v2.12.1", true, true},
		{"2.15.2", true, true},
		{"3.0.0", true, true},
		{"1.99.0", false, true},
		{"", false, false},
		{"2", false, false},
		{"two.eleven", false, false},
	} {
		ok, known := versionAtLeast(tc.v, 2, 11)
		if ok != tc.ok || known != tc.known {
			t.Errorf("versionAtLeast(%q, 2, 11) = %v, %v; want %v, %v", tc.v, ok, known, tc.ok, tc.known)
		}
	}
}
