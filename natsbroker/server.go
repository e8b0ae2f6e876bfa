package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MinServerVersion is the oldest nats-server a JetStreamBroker works with:
// the first with per-message TTLs (a stream's AllowMsgTTL, the Nats-TTL
// header), subject delete markers (a key-value bucket's LimitMarkerTTL) and
// batched direct gets, which it uses for live publications, presence and
// History. A Broker, on core NATS, works with any nats-server.
const MinServerVersion = "2.11.0"

// minMajor and minMinor are MinServerVersion's numbers.
const minMajor, minMinor = 2, 11

// ErrUnsupportedServer is returned, wrapped, when the NATS server cannot
// serve a JetStreamBroker: it is older than MinServerVersion, or JetStream
// is not enabled for the connection's account. The message names the
// server's version and what is missing. An older server would accept the
// stream's configuration without the fields it does not know, and every
// publication would then fail; so NewJetStream refuses it at once when its
// connection is up, and otherwise the first call that reaches the server
// fails with it.
var ErrUnsupportedServer = errors.New("natsbroker: unsupported NATS server")

// checkServer returns ErrUnsupportedServer, wrapped, if the server nc is
// connected to cannot serve a JetStreamBroker. It asks the server's
// account information (one round trip) to learn whether JetStream is
// there. What it cannot tell (nc is not connected, the server does not
// answer in time) it leaves to the calls that follow, which then fail with
// errors of their own: it returns nil, and checked false.
func checkServer(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (checked bool, err error) {
	v := nc.ConnectedServerVersion() // from the server's INFO: no round trip
	if v == "" {
		return false, nil // not connected
	}
	if ok, known := versionAtLeast(v, minMajor, minMinor); known && !ok {
		return true, fmt.Errorf("%w: nats-server %s (%s) has no per-message TTLs (AllowMsgTTL), subject delete markers or batched direct gets; a JetStreamBroker needs nats-server %s or later (New's Broker, on core NATS, works with any)",
			ErrUnsupportedServer, v, nc.ConnectedUrlRedacted(), MinServerVersion)
	}
	_, err = js.AccountInfo(ctx)
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return true, fmt.Errorf("%w: nats-server %s (%s): %w; a JetStreamBroker needs JetStream (nats-server -js, and JetStream enabled for the account)",
			ErrUnsupportedServer, v, nc.ConnectedUrlRedacted(), err)
	}
	return err == nil, nil
}

// versionAtLeast reports whether v, a server version as INFO gives it
// ("2.11.4", perhaps with a "-suffix"), is major.minor or later; known is
// false if v is not such a version, which the broker then does not hold
// against the server.
func versionAtLeast(v string, major, minor int) (ok, known bool) {
	v, _, _ = strings.Cut(strings.TrimPrefix(v, "v"), "-")
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return false, false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false, false
	}
	return ma > major || ma == major && mi >= minor, true
}

// ensureServer checks the server, as checkServer does, unless it was
// checked since the connection last (re)connected. Looking up the stream
// or the bucket calls it, so that a broker made while disconnected, or
// reconnected to another server since, fails with ErrUnsupportedServer
// rather than with what an old server answers.
func (j *jsState) ensureServer(ctx context.Context) error {
	gen := j.nc.Stats().Reconnects + 1 // 0 stands for never
	if j.checked.Load() == gen {
		return nil
	}
	checked, err := checkServer(ctx, j.nc, j.js)
	if checked && err == nil {
		j.checked.Store(gen)
	}
	return err
}
