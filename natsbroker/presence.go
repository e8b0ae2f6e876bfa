package natsbroker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// SetPresence implements broker.PresenceBroker. It puts the key
// <room token>.<node token> of the presence bucket (tokens as in the
// package documentation, Subjects; a node's starts with 'n' instead of
// 'r'), holding the nicknames as a JSON array, with a TTL of its own:
// JetStream removes it once ttl has passed without another SetPresence.
// JetStream counts TTLs in whole seconds, so ttl is rounded up to whole
// seconds, and to one at least. No nicknames purges the key.
func (b *JetStreamBroker) SetPresence(ctx context.Context, room, node string, nicknames []string, ttl time.Duration) error {
	if err := b.b.usable(ctx); err != nil {
		return err
	}
	if err := b.b.connected("set presence in", room); err != nil {
		return err
	}
	ctx, cancel := b.link.bind(ctx)
	defer cancel()
	key := roomToken(room) + "." + nodeToken(node)
	for attempt := 0; ; attempt++ {
		kv, err := b.js.ensureBucket(ctx)
		if err != nil {
			return fmt.Errorf("natsbroker: set presence in room %q: %w", room, explain(ctx, err))
		}
		if len(nicknames) == 0 {
			err = kv.Purge(ctx, key, jetstream.PurgeTTL(markerTTL))
		} else {
			data, _ := json.Marshal(nicknames) // cannot fail
			// The key-value API has no TTL for a put: publish as it would,
			// with one.
			_, err = b.js.js.Publish(ctx, "$KV."+b.js.cfg.PresenceBucket+"."+key, data,
				jetstream.WithMsgTTL(wholeSeconds(ttl)))
		}
		if attempt == 0 && errors.Is(err, jetstream.ErrNoStreamResponse) {
			// The bucket may be gone (memory storage, server restarted).
			b.js.kv.Store(nil)
			continue
		}
		if err != nil {
			return fmt.Errorf("natsbroker: set presence in room %q: %w", room, explain(ctx, err))
		}
		return nil
	}
}

// wholeSeconds rounds d up to a whole number of seconds, at least one.
func wholeSeconds(d time.Duration) time.Duration {
	return max((d+time.Second-1)/time.Second, 1) * time.Second
}

// Presence implements broker.PresenceBroker: it reads the last value of
// each of the room's keys in one direct get (at most 1024 nodes per room),
// skipping those removed.
func (b *JetStreamBroker) Presence(ctx context.Context, room string) (map[string][]string, error) {
	if err := b.b.usable(ctx); err != nil {
		return nil, err
	}
	if err := b.b.connected("read presence in", room); err != nil {
		return nil, err
	}
	ctx, cancel := b.link.bind(ctx)
	defer cancel()
	var (
		msgs []*nats.Msg
		err  error
	)
	for attempt := 0; ; attempt++ {
		if _, err = b.js.ensureBucket(ctx); err != nil {
			break
		}
		prefix := "$KV." + b.js.cfg.PresenceBucket + "." + roomToken(room) + "."
		msgs, _, err = directGet(ctx, b.b.nc, "KV_"+b.js.cfg.PresenceBucket, directGetRequest{MultiLastFor: []string{prefix + "*"}})
		if attempt == 0 && errors.Is(err, nats.ErrNoResponders) {
			b.js.kv.Store(nil)
			continue
		}
		break
	}
	if err != nil {
		return nil, fmt.Errorf("natsbroker: presence in room %q: %w", room, explain(ctx, err))
	}
	nodes := make(map[string][]string, len(msgs))
	for _, m := range msgs {
		// Deleted and purged keys, and the markers JetStream leaves for
		// expired ones, have an operation or a marker reason.
		if m.Header.Get("KV-Operation") != "" || m.Header.Get("Nats-Marker-Reason") != "" {
			continue
		}
		subj := m.Header.Get(jetstreamSubject)
		_, tok, _ := strings.Cut(strings.TrimPrefix(subj, "$KV."+b.js.cfg.PresenceBucket+"."), ".")
		node, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, "n"))
		if err != nil || !strings.HasPrefix(tok, "n") {
			b.b.log.Warn("natsbroker: unexpected presence key", "subject", subj)
			continue
		}
		var nicks []string
		if err := json.Unmarshal(m.Data, &nicks); err != nil {
			b.b.log.Warn("natsbroker: unreadable presence", "subject", subj, "err", err)
			continue
		}
		if len(nicks) > 0 {
			nodes[string(node)] = nicks
		}
	}
	return nodes, nil
}

// ensureBucket returns the presence bucket, looking it up, or creating it,
// first if need be. The bucket keeps one value per key and allows per-key
// TTLs (LimitMarkerTTL).
func (j *jsState) ensureBucket(ctx context.Context) (jetstream.KeyValue, error) {
	if kv := j.kv.Load(); kv != nil {
		return *kv, nil
	}
	if err := j.lock(ctx); err != nil {
		return nil, err
	}
	defer j.unlock()
	if kv := j.kv.Load(); kv != nil {
		return *kv, nil
	}
	if err := j.ensureServer(ctx); err != nil {
		return nil, err
	}
	name := j.cfg.PresenceBucket
	kv, err := j.js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = j.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         name,
			Description:    "chatroom presence (github.com/seed014c2c51/chatroom/natsbroker)",
			History:        1,
			Storage:        j.cfg.Storage,
			Replicas:       j.cfg.Replicas,
			LimitMarkerTTL: markerTTL,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = j.js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("presence bucket %s: %w", name, err)
	}
	status, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("presence bucket %s: %w", name, err)
	}
	if s, ok := status.(*jetstream.KeyValueBucketStatus); ok && s.LimitMarkerTTL() == 0 {
		return nil, fmt.Errorf("presence bucket %s does not allow per-key TTLs (LimitMarkerTTL)", name)
	}
	j.kv.Store(&kv)
	return kv, nil
}
