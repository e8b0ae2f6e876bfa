package chatroom

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// encodingJSON is the reference encoding: encoding/json without HTML escaping
// and without the newline Encoder appends.
func encodingJSON(t testing.TB, m Message) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "<script>&amp;</script>",
		"\x00\x01\x07\b\f\n\r\t\x1f\x7f", "日本語 👋", "\u2028\u2029", "bad \xff\xfe utf8", "\xed\xa0\x80",
	} {
		m := Message{Nickname: s, Text: s}
		if got, want := m.wire(), encodingJSON(t, m); got != want {
			t.Errorf("appendJSON(%q)\n got %s\nwant %s", s, got, want)
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{"", "hello", "\"\\\n", "<>&", "\xff", "\u2028", "日本"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, nickname, text string) {
		m := Message{Nickname: nickname, Text: text}
		got := m.wire()
		if want := encodingJSON(t, m); got != want {
			t.Fatalf("appendJSON differs from encoding/json\n got %s\nwant %s", got, want)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("output is not UTF-8: %q", got)
		}
	})
}

func FuzzDecodeInbound(f *testing.F) {
	for _, s := range []string{
		`{"message":"hello"}`, `{"message": "こんにちは"}`, `{"message":""}`, `{"message":"x","extra":1}`,
		`{"message":42}`, `{"message":null}`, `{"MESSAGE":"x"}`, `{}`, `[]`, `null`, `"x"`, ``, `{`,
		"{\"message\":\"\xff\"}", `{"message":"\ud800"}`, `{"message":"a","message":"b"}`, ` {"message":"ws"} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		text, err := decodeInbound(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("error %v does not wrap ErrInvalidMessage", err)
			}
			if code, reason := closeFrame(err); code != 1007 || len(reason) > 123 {
				t.Fatalf("close frame %d %q for %v", code, reason, err)
			}
			return
		}
		// Accepted input is what encoding/json reads as {"message": string}.
		var ref map[string]any
		if json.Unmarshal(data, &ref) != nil || !utf8.Valid(data) {
			t.Fatalf("accepted %q, which is not a valid JSON object", data)
		}
		if s, ok := ref["message"].(string); !ok || s != text {
			t.Fatalf("decoded %q from %q, encoding/json says %#v", text, data, ref["message"])
		}
		// And what is broadcast is valid JSON carrying the same text.
		var out Message
		if err := json.Unmarshal([]byte(Message{Nickname: "n", Text: text}.wire()), &out); err != nil || out.Text != text {
			t.Fatalf("round trip of %q: %v, %q", text, err, out.Text)
		}
	})
}

func FuzzValidateNickname(f *testing.F) {
	for _, s := range []string{"sei", "", "a\x00", "日本語", "\u202e", "\xff", strings.Repeat("x", 65), "unknown_::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateNickname(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidNickname) {
				t.Fatalf("error %v does not wrap ErrInvalidNickname", err)
			}
			return
		}
		// The length counts the name as members see it: prepared, with
		// its spaces trimmed and collapsed.
		prepared, err := PrepareNickname(s)
		if err != nil || s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(prepared) > MaxNicknameLength {
			t.Fatalf("accepted %q (prepared %q, %v)", s, prepared, err)
		}
		for _, r := range s {
			if r < 0x20 || (r >= 0x7f && r < 0xa0) || isBidiControl(r) {
				t.Fatalf("accepted %q with %U", s, r)
			}
		}
	})
}

func TestTruncateReason(t *testing.T) {
	long := strings.Repeat("あ", 50) // 150 bytes
	got := truncateReason(long)
	if len(got) > 123 || !utf8.ValidString(got) {
		t.Errorf("truncateReason: %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
	if truncateReason("short") != "short" {
		t.Error("short reason changed")
	}
}
