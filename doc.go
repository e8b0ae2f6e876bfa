// Package chatroom serves broadcast chat rooms over WebSocket.
//
// A [Room] is an [http.Handler]: every message a member sends reaches every
// member, the sender included. A room ignores the request path, so mount it
// at any path, under any prefix or behind [http.StripPrefix]:
//
//	room := chatroom.New()
//	http.Handle("/chat", room)
//	log.Fatal(http.ListenAndServe(":8000", nil))
//
// With no options a room speaks the protocol of the original tutorial: a
// client connects to ws://host/chat?nickname=sei and sends
// {"message":"hi"}, and every member receives {"nickname":"sei","message":"hi"}.
// [PROTOCOL.md] is the reference for the wire: every frame and field, frame
// IDs and resuming, every close code and HTTP status.
//
// The main concepts, each an option or a type:
//
//   - Many rooms: a [Registry] serves named rooms from one handler, creating
//     each on first join and removing it when its last member leaves
//     ([WithRoomOptions] gives each its options; [WithMaxRooms] caps them).
//   - Hooks: [OnJoin] admits or refuses a member, [OnMessage] rewrites or
//     refuses each message, [OnLeave] learns why a member left (a
//     [LeaveError]: the close status, and one of the sentinel errors, such
//     as [ErrQueueOverflow], for errors.Is). OnJoin runs on the
//     request's goroutine, the others on the member's own; no hook runs
//     under a room lock, so a hook may block and may call any method but
//     must not wait for Shutdown or Close. [Room.Broadcast], [Room.SendTo]
//     and [Member.Send] send from the server.
//   - Identity: [WithAuthenticator] names members from a token or a cookie,
//     the one way for the host to name them; [WithNicknameValidator] changes
//     how nicknames are checked.
//   - Typed frames: [WithEnvelope] adds a type, an ID and a time to every
//     frame; [WithNotices], [WithPresence], [WithErrorFrames],
//     [WithDirectMessages], [WithExcludeSender] and [WithUniqueNicknames]
//     build on it.
//   - History: [WithHistory] replays recent frames to joiners and lets a
//     client that reconnects with ?since=<id> receive exactly what it missed.
//   - Flow control: the room reads a fast sender later ([WithPacing]), cuts a
//     member that stops reading ([WithSendQueue], [WithWriteTimeout]) without
//     making the others wait, drops dead connections ([WithKeepalive]), and
//     bounds messages and joins ([WithMaxMessageSize], [WithRateLimit],
//     [WithJoinLimit]).
//   - Shutdown: [Room.Shutdown] closes every member gracefully and waits for
//     the hooks; call it as well as [http.Server.Shutdown], which does not
//     track WebSocket connections.
//   - Several nodes: [WithBroker] joins the rooms of one name on several
//     processes through a broker (package broker defines the interfaces and
//     an in-memory broker; the nested modules natsbroker and redisbroker
//     work across machines, and package brokertest checks an adapter).
//   - Testing: package chatroomtest tests a host's hooks and options the way
//     net/http/httptest tests handlers.
//
// Every option follows the rules on [Option]: zero means the default, [Off]
// turns off what can be turned off, and [New] panics on a bad value, naming
// the option.
//
// [PROTOCOL.md]: https://github.com/seed014c2c51/chatroom/blob/main/PROTOCOL.md
package chatroom
