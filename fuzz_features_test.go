package chatroom

import (
	"encoding/json"
	"errors"
	"github.com/seed014c2c51/chatroom/broker"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func FuzzDecodeClient(f *testing.F) {
	for _, s := range []string{
		`{"message":"hi","to":"bob"}`, `{"message":"hi","to":""}`, `{"message":"hi","to":7}`,
		`{"message":"hi","to":null}`, `{"to":"bob"}`, `{"message":"x","TO":"bob"}`, `{"message":"x","to":"\u00e9"}`,
		`{"message":"hi","ref":"r1"}`, `{"message":"hi","ref":""}`, `{"message":"hi","ref":7}`, `{"ref":"r1"}`,
		`{"message":"hi","ref":"\u00e9\ud83d\ude00"}`, `{"message":"hi","ref":"0123456789012345678901234567890123456789012345678901234567890123"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fields := range []clientFields{{}, {direct: true}, {ref: true}, {direct: true, ref: true}} {
			direct := fields.direct
			in, err := decodeClient(data, fields)
			if in.ref != "" && (!fields.ref || len(in.ref) > maxRefLen || !utf8.ValidString(in.ref)) {
				t.Fatalf("decoded ref %q from %q with %+v", in.ref, data, fields)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidMessage) {
					t.Fatalf("error %v does not wrap ErrInvalidMessage", err)
				}
				if code, reason := closeFrame(err); code != 1007 || len(reason) > 123 {
					t.Fatalf("close frame %d %q for %v", code, reason, err)
				}
				continue
			}
			var ref map[string]any
			if json.Unmarshal(data, &ref) != nil || !utf8.Valid(data) {
				t.Fatalf("accepted %q, which is not a valid JSON object", data)
			}
			to, hasTo := ref["to"]
			switch {
			case hasTo && !direct:
				t.Fatalf("accepted a \"to\" field without direct messages: %q", data)
			case hasTo && (to != in.to || in.to == ""):
				t.Fatalf("decoded to=%q from %q, encoding/json says %#v", in.to, data, to)
			case !hasTo && in.to != "":
				t.Fatalf("decoded to=%q from %q, which has none", in.to, data)
			}
			if r, hasRef := ref["ref"]; fields.ref && (hasRef != (in.ref != "") || hasRef && r != in.ref) {
				t.Fatalf("decoded ref=%q from %q, encoding/json says %#v", in.ref, data, r)
			}
		}
	})
}

func FuzzAppendEnvelope(f *testing.F) {
	f.Add("message", uint64(1), int64(0), "sei", "hi", "", "ann", 0)
	f.Add("members", uint64(1795420800000001), int64(1795420800123456789), "", "", "", "a\"b", 0)
	f.Add("error", uint64(7), int64(-1), "", "invalid JSON", "", "", 1007)
	f.Add("direct", uint64(9), int64(42), "<b>", "\u2028\xff", "bob", "", 4404)
	f.Add("ack", uint64(9), int64(42), "", "", "", "r-1\u2028", 0)
	f.Fuzz(func(t *testing.T, typ string, id uint64, nanos int64, nickname, text, to, member string, code int) {
		in := Message{
			Type: MessageType(typ), ID: id, Time: time.Unix(0, nanos).UTC(),
			Nickname: nickname, Text: text, To: to, Code: code,
		}
		if in.Type == TypeMembers {
			in.Members = []string{member, "x"}
		} else {
			in.Ref = member
		}
		wire := in.appendEnvelope(nil)
		var out Message
		if err := json.Unmarshal(wire, &out); err != nil {
			t.Fatalf("%s is not JSON: %v", wire, err)
		}
		// What encoding/json reads back is the message, with invalid UTF-8
		// replaced and the time cut to milliseconds.
		want := in
		want.Type = MessageType(toValidUTF8(string(in.Type.orDefault())))
		for _, s := range []*string{&want.Nickname, &want.Text, &want.To, &want.Ref} {
			*s = toValidUTF8(*s)
		}
		for i := range want.Members {
			want.Members[i] = toValidUTF8(want.Members[i])
		}
		want.Time = in.Time.Truncate(time.Millisecond)
		if y := want.Time.Year(); y < 0 || y > 9999 {
			return // RFC 3339 cannot hold it; the room's clock never gives it
		}
		if diff := cmp.Diff(want, out); diff != "" {
			t.Fatalf("round trip of %s (-want +got):\n%s", wire, diff)
		}
	})
}

// toValidUTF8 replaces each invalid byte as encoding/json does.
func toValidUTF8(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

// FuzzDeliver feeds a cluster node publications as a broker might hand
// them over, garbled or not: the node must neither panic nor take a
// stranger's garbage for presence it cannot undo.
func FuzzDeliver(f *testing.F) {
	for _, s := range []string{
		`{"n":"peer","s":1,"m":{"type":"message","nickname":"ann","message":"hi"}}`,
		`{"n":"peer","m":{"type":"join","nickname":"ann"}}`,
		`{"n":"peer","m":{"type":"leave","nickname":"ann"}}`,
		`{"n":"peer","p":true,"k":["ann","bob"],"q":true}`,
		`{"n":"peer","p":true}`,
		`{"n":"peer","t":"ann","m":{"type":"direct","nickname":"bob","to":"ann","message":"x"}}`,
		`{"n":"peer","s":2,"f":3,"r":"r1","y":"\"nann\"r1","m":{"type":"message","nickname":"ann","message":"hi","ref":"r1"}}`,
		`{"n":"","m":{}}`, `null`, `{"n":"peer","m":null}`, `{"n":"peer","k":[null]}`,
	} {
		f.Add([]byte(s), uint64(0))
		f.Add([]byte(s), uint64(42))
	}
	f.Fuzz(func(t *testing.T, data []byte, id uint64) {
		rm := New(WithBroker(broker.NewMemory(4)), WithPresence(), WithHistory(History{Len: 4}), WithName("lobby"))
		c := rm.link.(*cluster)
		c.deliver(broker.Publication{ID: id, Keep: id != 0, Data: data})
		rm.mu.Lock()
		defer rm.mu.Unlock()
		c.peers.expireLocked(time.Now().Add(time.Hour)) // every peer has expired
		if len(c.peers.peers) != 0 {
			t.Fatalf("peers left after expiry: %v", c.peers.peers)
		}
		if len(c.peers.told) != 0 {
			t.Fatalf("nicknames still told present with no member anywhere: %v", c.peers.told)
		}
	})
}
