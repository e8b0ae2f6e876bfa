package natsbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/seed014c2c51/chatroom/broker"
)

// History implements broker.HistoryBroker with the semantics of
// broker.Memory, stream sequences standing for IDs.
//
// The stream keeps History+1+Backlog kept publications per room (its
// MaxMsgsPerSubject), dropping the oldest, and History returns the newest
// History of them: the one before those, when there is one, is the room's
// newest dropped publication as far as History is concerned. So:
//
//   - with after 0, complete is true if the stream holds no more than
//     History kept publications of the room, as then it never dropped any;
//   - with after the ID of one of the History+1 newest kept publications,
//     complete is true and History returns the publications after it;
//   - with any other after, complete is false and History returns every
//     publication it keeps: after is an ID that was dropped, or not one of
//     this room's (another room's, one greater than the room's last, one
//     from a stream that was lost and created again, whose IDs are all
//     smaller than the new stream's).
//
// This holds as long as publications leave the stream oldest first, which
// is all this package does; deleting one by hand, or adding a limit by age
// to the stream, can make complete true where something was lost.
//
// History reads with JetStream direct gets: one consistent read from the
// server that answers, which, with Replicas above 1, may be a replica a
// moment behind the leader. A call with after one of the History+1 newest
// IDs takes one round trip and reads only what follows it; others read
// everything the stream keeps for the room (the backlog included), in one
// more round trip for a non-zero after.
func (b *JetStreamBroker) History(ctx context.Context, room string, after uint64) ([]broker.Publication, bool, error) {
	if err := b.b.usable(ctx); err != nil {
		return nil, false, err
	}
	if err := b.b.connected("read the history of", room); err != nil {
		return nil, false, err
	}
	ctx, cancel := b.link.bind(ctx)
	defer cancel()
	pubs, complete, err := b.history(ctx, room, after)
	if errors.Is(err, nats.ErrNoResponders) {
		// Nothing answers direct gets: the stream may be gone. Look again.
		b.js.lostStream()
		pubs, complete, err = b.history(ctx, room, after)
	}
	if err != nil {
		return nil, false, fmt.Errorf("natsbroker: history of room %q: %w", room, explain(ctx, err))
	}
	return pubs, complete, nil
}

func (b *JetStreamBroker) history(ctx context.Context, room string, after uint64) ([]broker.Publication, bool, error) {
	st, err := b.js.ensureStream(ctx, b.b.prefix)
	if err != nil {
		return nil, false, err
	}
	kept := b.b.subjects(room).kept
	if after != 0 {
		pubs, more, err := b.js.readBatch(ctx, b.b.nc, directGetRequest{Seq: after, NextFor: kept, Batch: st.history + 1})
		if err != nil {
			return nil, false, err
		}
		if len(pubs) > 0 && pubs[0].ID == after && !more {
			return pubs[1:], true, nil
		}
	}
	pubs, err := b.js.readKept(ctx, b.b.nc, kept, st.perRoom)
	if err != nil {
		return nil, false, err
	}
	var dropped uint64 // the newest publication History does not return
	if n := len(pubs) - st.history; n > 0 {
		dropped = pubs[n-1].ID
		pubs = pubs[n:]
	}
	switch {
	case after == 0:
		return pubs, dropped == 0, nil
	case after == dropped:
		return pubs, true, nil
	}
	// after was not there at the first read; it may have been published
	// since, by a client that already knows of it.
	if i, found := slices.BinarySearchFunc(pubs, after, func(p broker.Publication, id uint64) int {
		return cmpUint(p.ID, id)
	}); found {
		return pubs[i+1:], true, nil
	}
	return pubs, false, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// directGetRequest is a JetStream direct get request (nats-server 2.11 and
// later): a batch of the messages of a subject from a sequence on, or the
// last message of each subject matching some filters. The server reads a
// batch at once, isolated from writes.
type directGetRequest struct {
	Seq          uint64   `json:"seq,omitempty"`
	NextFor      string   `json:"next_by_subj,omitempty"`
	Batch        int      `json:"batch,omitempty"`
	MultiLastFor []string `json:"multi_last,omitempty"`
}

// maxBatches bounds the number of round trips one read may take when the
// stream holds more than the broker expects (an operator raised its
// limits).
const maxBatches = 64

// readKept returns the kept publications on subject, oldest first: all of
// them the stream holds, in batches of batch.
func (j *jsState) readKept(ctx context.Context, nc *nats.Conn, subject string, batch int) ([]broker.Publication, error) {
	var pubs []broker.Publication
	req := directGetRequest{NextFor: subject, Batch: batch}
	for range maxBatches {
		got, more, err := j.readBatch(ctx, nc, req)
		if err != nil {
			return nil, err
		}
		pubs = append(pubs, got...)
		if !more || len(got) == 0 {
			return pubs, nil
		}
		req.Seq = pubs[len(pubs)-1].ID + 1
	}
	return nil, errors.New("direct get: too many messages")
}

// readBatch returns the kept publications one direct get returns, and
// whether more follow.
func (j *jsState) readBatch(ctx context.Context, nc *nats.Conn, req directGetRequest) ([]broker.Publication, bool, error) {
	msgs, more, err := j.directGet(ctx, nc, req)
	if err != nil {
		return nil, false, err
	}
	pubs := make([]broker.Publication, 0, len(msgs))
	for _, m := range msgs {
		seq, err := strconv.ParseUint(m.Header.Get(jetstreamSequence), 10, 64)
		if err != nil {
			return nil, false, fmt.Errorf("direct get: bad sequence %q", m.Header.Get(jetstreamSequence))
		}
		pubs = append(pubs, broker.Publication{ID: seq, Keep: true, Data: m.Data})
	}
	return pubs, more, nil
}

// Headers of the messages a direct get returns.
const (
	jetstreamSequence   = "Nats-Sequence"
	jetstreamSubject    = "Nats-Subject"
	jetstreamNumPending = "Nats-Num-Pending"
	natsStatus          = "Status"
	natsDescription     = "Description"
)

// directGet sends req to the stream's direct get API and collects the
// answer: the messages, and whether more match than the batch held.
func (j *jsState) directGet(ctx context.Context, nc *nats.Conn, req directGetRequest) ([]*nats.Msg, bool, error) {
	return directGet(ctx, nc, j.cfg.Stream, req)
}

func directGet(ctx context.Context, nc *nats.Conn, stream string, req directGetRequest) ([]*nats.Msg, bool, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, false, err
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, data); err != nil {
		return nil, false, err
	}
	// The answer is at most a batch of messages, or 1024 for multi_last,
	// and an end marker.
	var msgs []*nats.Msg
	for range max(req.Batch, 1024) + 1 {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, false, err
		}
		switch status := m.Header.Get(natsStatus); status {
		case "":
			msgs = append(msgs, m)
		case "204": // end of batch
			pending, _ := strconv.ParseUint(m.Header.Get(jetstreamNumPending), 10, 64)
			return msgs, pending > 0 && req.MultiLastFor == nil, nil
		case "404": // nothing matches
			return msgs, false, nil
		case "503":
			return nil, false, nats.ErrNoResponders
		default:
			return nil, false, fmt.Errorf("direct get: status %s %s", status, m.Header.Get(natsDescription))
		}
	}
	return nil, false, errors.New("direct get: answer too long")
}
