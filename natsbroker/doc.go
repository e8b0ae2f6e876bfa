// Package natsbroker joins the rooms of github.com/seed014c2c51/chatroom
// on several nodes through NATS: it provides a broker.PipelineBroker over
// core NATS (a room has several batches in flight to it), and a
// broker.HistoryBroker, broker.DedupBroker and
// broker.PresenceBroker over JetStream. Core NATS keeps no record of the
// refs clients send with their messages: a resend through another node is
// delivered again there; JetStream's duplicate window recognises it.
//
// The host owns the NATS connection; ConnectOptions lists the options it
// should have. Every node of a cluster connects, makes a broker, and gives
// it to its rooms:
//
//	nc, err := nats.Connect(url, natsbroker.ConnectOptions()...)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer nc.Close()
//	b, err := natsbroker.NewJetStream(nc, natsbroker.JetStreamConfig{History: 100})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer b.Close()
//	rooms := chatroom.NewRegistry(chatroom.WithRoomOptions(func(string) []chatroom.Option {
//		return []chatroom.Option{chatroom.WithBroker(b), chatroom.WithHistory(chatroom.History{Len: 50}), chatroom.WithPresence()}
//	}))
//	http.Handle("/rooms/{room}/chat", rooms)
//
// # Two modes
//
// New returns a Broker, on core NATS: nothing to set up on the server, and
// the least latency, but no history across nodes (each node numbers and
// keeps its own) and presence from the nodes' heartbeats only. A
// publication is delivered to the subscriptions the server knows of when it
// routes it; one published while a node is disconnected, or that the server
// had not yet delivered when it failed, is lost to that node.
//
// NewJetStream returns a JetStreamBroker (nats-server 2.11 or later, with
// JetStream; NewJetStream refuses any other with ErrUnsupportedServer): one
// stream holds every publication, kept ones numbered by their stream
// sequence and kept per room for History, live ones for a second; every
// subscription reads the stream in order through a consumer of its own,
// and picks up after a disconnection where it left off. A key-value bucket
// holds presence. The two are distinct types because a room asks its
// broker, by its type, whether it keeps history and presence.
//
// All nodes of a cluster must use the same mode, the same prefix, and the
// same version of chatroom.
//
// # Subjects
//
// A room's publications go to <prefix>.room.<token>.kept and
// <prefix>.room.<token>.live, where the prefix is "chatroom" unless
// WithPrefix says otherwise, and the token is 'r' followed by the room's
// name in unpadded base64url (room names may contain '.', which separates
// subject tokens, or be empty): the room "lobby" is
// chatroom.room.rbG9iYnk.kept. The data is what the room encoded, as is.
//
// # Outages
//
// Publish fails at once, with ErrNotConnected and broker.ErrUnavailable,
// while the connection is down: nothing was sent, and the room delivers the
// publication to its own members only; it never reaches the others. So does
// a JetStreamBroker's when no stream answers. When the connection drops
// during the call, or the server does not answer in time (it hangs, or a
// clustered stream has no leader), Publish fails without
// broker.ErrUnavailable: the server may have the publication, and a server
// that hung delivers it when it goes on, to every node, the publisher's
// included; the room delivers it only then. Subscribe succeeds while the
// connection is down, and subscriptions come back by themselves when it is
// up again. See Broker and JetStreamBroker for what each loses in between.
package natsbroker
