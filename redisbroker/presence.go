package redisbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// SetPresence implements broker.PresenceBroker. Expiry is judged by the
// Redis server's clock, so the nodes' clocks need not agree. No nicknames,
// or a ttl that is not positive (a record that expires at once, as with
// broker.Memory), removes node's record.
func (b *Broker) SetPresence(ctx context.Context, room, node string, nicknames []string, ttl time.Duration) error {
	if b.isClosed() {
		return errClosed("set presence")
	}
	var value string
	var ms int64
	if len(nicknames) > 0 && ttl > 0 {
		data, err := json.Marshal(nicknames)
		if err != nil {
			return fmt.Errorf("redisbroker: set presence in room %q: %w", room, err)
		}
		value = string(data)
		// Rounded up, so that a record never expires before ttl.
		ms = int64((ttl + time.Millisecond - 1) / time.Millisecond)
	}
	ctx, cancel := b.opContext(ctx)
	defer cancel()
	k := keysFor(b.prefix, room)
	err := setPresenceScript.Run(ctx, b.client, []string{k.presence, k.nicknames}, node, value, ms).Err()
	if err != nil {
		return fmt.Errorf("redisbroker: set presence in room %q: %w", room, err)
	}
	return nil
}

// Presence implements broker.PresenceBroker. It returns an empty map when
// no node has a record. A record that cannot be decoded (written by another
// program) is skipped.
func (b *Broker) Presence(ctx context.Context, room string) (map[string][]string, error) {
	if b.isClosed() {
		return nil, errClosed("presence")
	}
	ctx, cancel := b.opContext(ctx)
	defer cancel()
	k := keysFor(b.prefix, room)
	res, err := presenceScript.Run(ctx, b.client, []string{k.presence, k.nicknames}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisbroker: presence in room %q: %w", room, err)
	}
	nodes := make(map[string][]string, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		var nicknames []string
		if json.Unmarshal([]byte(res[i+1]), &nicknames) != nil || len(nicknames) == 0 {
			continue
		}
		nodes[res[i]] = nicknames
	}
	return nodes, nil
}
