package chatroom

import (
	"encoding/json"
	"errors"
)

// wire is a publication's Data: what one node tells the others about a
// room. It is JSON so that it stays readable in a broker's tools. Its form
// is internal: run one version per cluster.
type wire struct {
	Node string `json:"n"`
	// Seq numbers the node's publications, so that one it has delivered
	// itself, because the broker refused it, is not delivered twice.
	Seq  uint64 `json:"s,omitempty"`
	From uint64 `json:"f,omitempty"` // the sending member's ID on Node
	// Msg is a frame for the whole room, or, if To is set, for the
	// connections of nickname To (and the sending member's own).
	Msg *Message `json:"m,omitempty"`
	To  string   `json:"t,omitempty"`
	// Ref is the sender's ref for Msg, and Key its record's key (ack.go),
	// for the sender's node to acknowledge it.
	Ref string `json:"r,omitempty"`
	Key string `json:"y,omitempty"`
	// Snapshot says this is the node's presence: the nicknames it has, in
	// join order. Query asks every other node for its presence now.
	Snapshot bool     `json:"p,omitempty"`
	Nicks    []string `json:"k,omitempty"`
	Query    bool     `json:"q,omitempty"`
}

var errNoNode = errors.New("no node")

func decodeWire(data []byte) (wire, error) {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return w, err
	}
	if w.Node == "" {
		return w, errNoNode
	}
	return w, nil
}

// post returns the post that w carries; mine says this node sent it.
func (w *wire) post(mine bool) post {
	p := post{msg: *w.Msg, to: w.To, from: w.From, mine: mine, origin: w.Node}
	p.msg.Ref = "" // the ref is its sender's, not the room's
	if mine {
		p.ref, p.key = w.Ref, w.Key
	}
	return p
}

// encode returns w as a publication's Data.
func (w *wire) encode() []byte {
	data, _ := json.Marshal(w) // cannot fail: a Message always encodes
	return data
}
