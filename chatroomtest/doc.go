// Package chatroomtest tests chat rooms of package chatroom without
// WebSocket plumbing, as net/http/httptest tests HTTP handlers: a host
// application checks its hooks and options with a few lines per case.
//
//	func TestShout(t *testing.T) {
//		room := chatroom.New(chatroom.OnMessage(shout))
//		srv := chatroomtest.NewServer(t, room)
//		ann := srv.Connect("ann")
//		bob := srv.Connect("bob")
//
//		ann.Send("hello")
//		bob.Expect(chatroom.Message{Nickname: "ann", Text: "HELLO"})
//	}
//
// NewServer serves a *chatroom.Room, a *chatroom.Registry (see Mount) or any
// http.Handler that speaks the chat protocol on a loopback httptest.Server.
// Server.Connect connects a client, with a nickname and, through options,
// query parameters (Query("since", id)), handshake headers (Header) and a
// path (Path), and returns once the client has joined the room, so that what
// the next client says reaches it. Server.Dial does the same but returns the
// handshake's error and HTTP response, to test refusals before the upgrade.
// Remote connects clients in the same way to a server the test runs itself,
// such as the host's own http.Server with its middleware and limits, or a
// process it has started, but cannot see the join: its clients first hear
// something that shows they have joined.
//
// A Client sends chat messages (Send), direct messages (SendTo) and raw
// frames (SendRaw). Client.Expect reads the next frames, decodes them into
// chatroom.Message values and reports any difference from the expected ones
// as a go-cmp diff; Client.Next returns the next message for checks of your
// own, Client.NextRaw its exact wire form, Client.NextFunc the next one a
// test function accepts (for frames whose order the test cannot know), and
// Client.ExpectClose checks the status the server closed the connection
// with.
//
// # IDs and times
//
// Envelope frames (chatroom.WithEnvelope, WithNotices, WithPresence,
// WithErrorFrames, WithDirectMessages) carry an ID and a Time from the room's
// clock. Either ignore them, with the IgnoreIDAndTime option, or make them
// reproducible, with chatroom.WithClock: a room created at T stamps its
// frames with T, to the millisecond, and numbers them in steps of 1024 from
// an ID that T and the room's name decide; take the first from the first
// frame a client receives.
//
// # Time and synchronisation
//
// Every wait is bounded by a timeout (DefaultTimeout, 5s; see Timeout) and
// ends as soon as what it waits for happens: the kit never sleeps, and a
// passing test never waits out a timeout. In particular nothing in the kit
// waits to see that no frame arrives. To check that a frame was not sent,
// make a later one arrive and check that it comes next: Client.Sync waits
// until the room has handled everything a client sent, after which a marker
// sent with Room.Broadcast reaches every member behind anything those
// messages caused (see the Sync example).
//
// # Goroutines and cleanup
//
// The kit reports failures to the TB given to NewServer, which is usually the
// test's *testing.T, with Errorf for a mismatch and Fatalf when the test
// cannot go on (nothing arrived in time, the connection ended). Since Fatalf
// stops the goroutine that calls it, call Connect and the Client methods from
// the test's goroutine only, and give each subtest a Server of its own.
//
// Each client has a reader goroutine. When the test ends, t.Cleanup closes
// the server (or call Server.Close earlier): it shuts down the handler if it
// has a Shutdown method, as Room and Registry do, which waits for every leave
// hook; then it drops every client's connection, waits for the reader
// goroutines and closes the HTTP server. Nothing of the kit outlives the test.
//
// Examples have no *testing.T; they use Run, which provides a TB.
package chatroomtest
