// Package chatroom serves broadcast chat rooms over WebSocket.
//
// A Room is an http.Handler: mount it at any path of any router, and every
// message a member sends reaches every member, the sender included.
//
//	room := chatroom.New()
//	http.Handle("/chat", room)
//	log.Fatal(http.ListenAndServe(":8000", nil))
//
// # Protocol
//
// A client opens a WebSocket to the room's path, optionally with a
// "nickname" query parameter:
//
//	ws://localhost:8000/chat?nickname=sei
//
// An absent or empty nickname becomes "unknown_{client IP}", for example
// "unknown_127.0.0.1" or "unknown_::1". A nickname the client chooses must
// pass ValidateNickname (the PRECIS Nickname profile of RFC 8266, or the
// WithNicknameValidator in force) and must not begin with "unknown_" in any
// case; otherwise the request is refused with HTTP 400 and a plain-text reason
// before any upgrade. The room shows it prepared (PrepareNickname): spaces
// trimmed and collapsed, NFKC-normalised.
//
// The client sends text frames holding a JSON object with a string "message"
// field; other fields are ignored:
//
//	{"message": "contents"}
//
// Every member receives one text frame per message, with no spaces and no
// trailing newline:
//
//	{"nickname":"sei","message":"contents"}
//
// All members receive the room's messages in one and the same order, and a
// member's messages keep the order in which it sent them.
//
// # Host features
//
// Everything beyond that protocol is opt-in, and PROTOCOL.md in the
// repository documents each frame it adds. A Registry serves many named
// rooms from one handler (the {room} path value by default), creating each on
// first join and removing it when its last member leaves. WithAuthenticator
// names members from a token and refuses others with 4001. WithEnvelope adds
// "type", "id" and "time" to every frame; WithNotices, WithPresence,
// WithErrorFrames and WithDirectMessages add join and leave notices, the
// member list, error frames and direct messages. WithHistory replays recent
// frames to joiners and lets a client resume with ?since=<id>, with no gap
// and no duplicate.
//
// # Close status codes
//
// Bad input is never broadcast and never disturbs the other members: the
// sender's connection is closed with a status code and reason, and the leave
// hook learns why through a sentinel error.
//
//	code  leave reason        when                                     close reason
//	1001  ErrRoomClosed       Shutdown (Close sends no close frame)    "room closed"
//	1003  ErrUnsupportedData  a binary frame                           "binary messages are not supported"
//	1007  ErrInvalidMessage   a text frame that is not UTF-8           "invalid UTF-8"
//	1007  ErrInvalidMessage   a frame that is not JSON                 "invalid JSON"
//	1007  ErrInvalidMessage   JSON without a string "message"          "expected {"message": string}"
//	1008  ErrSlowConsumer     the member fell behind (see below)       "too slow"
//	1008  ErrRateLimited      faster than WithRateLimit allows         "rate limit exceeded"
//	1008  (never joined)      the join hook returned an error          "join refused"
//	1009  ErrMessageTooBig    a message over WithMaxMessageSize        "message too big"
//	1011  ErrHookPanic        a hook panicked                          "internal error"
//	any   ErrRefused          a hook's websocket.CloseError;           as given
//	                          Member.Close
//	4001  (never joined)      WithAuthenticator refused the client     "Unauthorized"
//	4009  (never joined)      WithUniqueNicknames: nickname present    "nickname taken"
//
// With WithErrorFrames, the 1003, 1007 and rate-limit faults, and messages
// the message hook refuses, are answered with an error frame instead, and
// the member stays.
//
// A member that disconnects leaves with ErrClientClosed. A member that does
// not answer a keepalive ping in time is dropped without a close frame and
// leaves with ErrPingTimeout. Before the upgrade
// the handler answers 400 (invalid nickname, room name or since), 401
// (WithHTTPUnauthorized), 403 (origin not allowed, see WithOriginPatterns),
// 426 (not a WebSocket request) and 503 (room closed, or too many rooms).
//
// # Slow members, keepalive and shutdown
//
// A broadcast is encoded once and queued for every member without waiting for
// any socket. Each member has its own queue and a writer goroutine that exists
// only while the queue is not empty; it hands the connection everything queued
// at once, and those frames reach the network in a single write. The queue is bounded by count and bytes
// (WithSendQueue, 8192 messages and 4 MiB by default: enough for a member that
// reads normally to survive a burst of thousands of messages), and each write
// must finish within the write timeout (WithWriteTimeout, 10s). A member that
// exceeds either is closed with 1008 "too slow"; the others do not notice.
// What the kernel holds for a member is bounded by its socket's send buffer
// (WithSendBuffer, 64 KiB), and a joiner's history is encoded only as its
// writer reaches it, so a member that never reads costs a bounded amount.
//
// What members send is shaped, not policed: the room reads at most 1000
// messages a second from one member (WithPacing), and stops reading a member
// whose own queue is more than half full, so that TCP makes a fast sender
// wait instead of its flood filling the others' queues or its own echoes
// getting it cut. WithRateLimit adds policing on top. One client IP may join
// a room 100 times at once and 20 times a second after that (WithJoinLimit).
//
// Every close the room starts completes the closing handshake of RFC 6455:
// after the close frame it reads and discards what the client still sends
// until the client's close frame, within the close timeout (WithCloseTimeout),
// and only then closes the connection, so that the client reads the close
// code even while it is still sending. A message over the size limit is
// discarded to its end (at most 128 MiB more, for up to half the close
// timeout) before the 1009 close frame, so that a browser has sent it all
// and reports the close as clean.
//
// The room pings every member every 30s and drops one that does not answer
// within 15s (WithKeepalive). Shutdown refuses new connections with 503,
// closes every member with 1001 and waits, within its context, for every
// member goroutine and leave hook; combine it with http.Server.Shutdown as
// shown on Room.Shutdown.
//
// # Hooks and goroutines
//
// A connection is upgraded and joined on the goroutine net/http started for
// it, so the authenticator and the join hook (OnJoin) run there. ServeHTTP
// then returns, freeing what net/http holds per request, and the member is
// served by a goroutine of its own that the room owns: it reads the member's
// messages and runs the message and leave hooks (OnMessage, OnLeave). No hook
// runs while a room lock is held, so a hook may block (delaying only its own
// member) and may call any method of the Room or of a Member, except that a
// hook must not wait for Shutdown or Close: they wait for the hook.
//
// A member's goroutine handles its messages one at a time, in order, and
// answers the client's pings only when it goes back to reading: a pong tells
// a client that everything it sent before the ping has been handled.
// Hooks of different members run concurrently. A panicking hook closes that
// member's connection with 1011; it does not crash the process.
//
// The authenticator runs before the upgrade and may use r.Context(). WithRoomConfig's function runs with
// the Registry's lock held and must not call the Registry. A Store is called
// with the room's lock held and must not block.
//
// # Clusters
//
// When one process is not enough, run several behind a load balancer (no
// sticky sessions needed) and give each room WithBroker: rooms of the same
// name on every node then act as one room. A Broker moves the frames
// between the nodes; broker.Memory does it within one process, and the
// nested modules natsbroker (NATS, with optional JetStream history and
// presence) and redisbroker (Redis pub/sub, Streams history, presence
// with expiry) across machines. A node subscribes to a room only while it
// has members there; every room frame is published once and each node
// encodes it once for its own members.
//
// Every member of a room, on every node, receives each message exactly
// once, and each sender's messages in the order it sent them. Presence
// (member list, notices, Room.Nicknames) spans the nodes, and a node that
// dies leaves it within four heartbeats (WithHeartbeat). With a
// HistoryBroker the frame IDs, the history and resuming with ?since= hold
// across nodes. While the broker is unreachable each node goes on alone:
// its members still reach each other, and what they send then never
// reaches the other nodes. WithBroker says what runs where; package
// brokertest checks a broker against all of this with three nodes.
//
// The hooks run on the node where the member is connected; a deliver
// callback of the broker's takes the room's lock briefly and never blocks.
//
// # Testing
//
// Package chatroomtest tests a host's hooks and options the way
// net/http/httptest tests handlers: a room on a loopback server, named
// clients, and go-cmp diffs of what each receives, with a timeout on every
// wait and no sleeps.
package chatroom
