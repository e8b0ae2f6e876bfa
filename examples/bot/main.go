// Command bot shows a server-side participant built from a room's hooks: a
// bot that greets joiners and answers slash commands.
//
//	go run ./examples/bot                  # port 8003
//	go run ./examples/bot -addr :9000 -announce 15m
//
// It serves one room at /chat. The room speaks the envelope
// (chatroom.WithEnvelope), so a client tells the bot's private answers
// ("type":"direct") from the room's messages ("type":"message"). Members
// send commands as ordinary messages:
//
//	/help          the commands
//	/who           who is in the room
//	/time          the server's time
//	/echo <text>   <text>, back to the sender
//	/me <action>   "* sei waves", to the whole room
//	//text         the message "/text", to the whole room
//
// # Who hears what
//
// A command is not broadcast: the message hook answers it and returns an
// error wrapping chatroom.ErrHandled, so the room drops it, as it drops any
// message a hook refuses, but knows the hook has dealt with it. The room
// uses chatroom.WithErrorFrames, which answers bad input and refused
// messages with an error frame instead of closing the connection; for a
// handled command it sends none, and the asker hears nothing but the bot's
// answer. The answer goes to the asking connection alone, with Member.Send:
// nobody else saw the question, not even the asker's other connections
// (Room.SendTo would reach those), so to them the answer would be noise. /me
// and //text are rewritten instead, and reach everyone as messages of their
// sender.
//
// # Not blocking the room
//
// Each hook runs on the goroutine of the member it concerns, never under the
// room's lock. A hook may block, and only its own member waits: a slow
// command would hold up the asker's next messages, nobody else's. This bot
// does not even do that: Member.Send and Room.Broadcast queue a frame and
// never wait for a socket, and Room.Nicknames holds the room's lock for a
// moment. A command that had to wait for something slow, such as a web API,
// should run on a goroutine of its own and answer with Member.Send, which is
// safe from any goroutine and fails with chatroom.ErrMemberLeft once the
// asker has gone. The one thing a hook must not do is wait for the room's
// Shutdown or Close, which wait for the hooks.
//
// With -announce, the bot also reminds the room of /help at that interval,
// from a goroutine of its own, with Room.Broadcast.
//
// The HTTP server's timeouts and header limit are those of
// examples/internal/serve (-read-header-timeout, -read-timeout,
// -write-timeout, -idle-timeout, -max-header-bytes); they bound ordinary
// requests and idle keep-alive connections, not WebSockets.
//
// SIGINT or SIGTERM shuts the server down gracefully: members receive close
// status 1001.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/examples/internal/serve"
)

const (
	botName         = "bot"
	shutdownTimeout = 10 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "bot:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, then shuts down within 10 seconds. If ready is
// not nil, it receives the listening address once the server accepts
// connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("bot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":8003", "address to listen on")
	announce := fs.Duration("announce", 0, "how often the bot reminds the room of /help (0: never)")
	limits := serve.Defaults()
	limits.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *announce < 0 {
		return fmt.Errorf("-announce %v: must not be negative", *announce)
	}
	if err := limits.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	b := &bot{name: botName, now: time.Now}
	room := chatroom.New(
		chatroom.WithLogger(log),
		chatroom.WithEnvelope(),
		chatroom.WithErrorFrames(), // bad input: an error frame, not a close
		chatroom.WithNicknameValidator(b.validateNickname),
		chatroom.OnJoin(b.greet),
		chatroom.OnMessage(b.onMessage),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /chat", room)
	srv := limits.Server(mux, log)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Info("bot: listening", "addr", ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr().String()
	}

	announcing, stopAnnouncing := context.WithCancel(ctx)
	defer stopAnnouncing()
	announced := make(chan struct{})
	go func() {
		defer close(announced)
		if *announce > 0 {
			b.announce(announcing, room, *announce)
		}
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}

	log.Info("bot: shutting down")
	<-announced // ctx has ended, and with it the announcements
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// http.Server.Shutdown neither closes nor waits for WebSocket
	// connections, which it no longer tracks once upgraded: the room does.
	err = errors.Join(srv.Shutdown(shutdownCtx), room.Shutdown(shutdownCtx))
	if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// bot is the room's server-side participant. It is not a member: it speaks
// through the hooks and the room's methods.
type bot struct {
	name string
	now  func() time.Time
}

const help = `commands, answered to you alone:
/help          this list
/who           who is here
/time          the server's time
/echo <text>   <text>, back to you
/me <action>   tell the room what you do: "* sei waves"
//text         send the message "/text"`

// validateNickname is the room's nickname check: the default one, and no
// member may pass as the bot.
func (b *bot) validateNickname(nickname string) error {
	if strings.EqualFold(nickname, b.name) {
		return fmt.Errorf("%w: %q is reserved", chatroom.ErrInvalidNickname, nickname)
	}
	return chatroom.ValidateNickname(nickname)
}

// greet is the join hook. It runs before the member joins, and Member.Send
// reaches the member already, so the greeting is the first thing it hears.
func (b *bot) greet(ctx context.Context, m *chatroom.Member) error {
	return b.tell(ctx, m, "welcome, "+m.Nickname()+"! type /help to see what I can do")
}

// tell sends text to one connection, from the bot. With the envelope the
// frame is a "direct" one, to that member.
func (b *bot) tell(ctx context.Context, m *chatroom.Member, text string) error {
	return m.Send(ctx, chatroom.Message{Nickname: b.name, Text: text})
}

// onMessage is the message hook, on the sender's goroutine. Ordinary
// messages pass unchanged; /me and //text are rewritten for the room; any
// other command is answered to the sender and dropped, with
// chatroom.ErrHandled, so that the room sends no error frame for it.
func (b *bot) onMessage(ctx context.Context, from *chatroom.Member, msg chatroom.Message) (chatroom.Message, error) {
	text, isCommand := strings.CutPrefix(msg.Text, "/")
	if !isCommand {
		return msg, nil
	}
	if strings.HasPrefix(text, "/") {
		msg.Text = text // "//text" is the message "/text"
		return msg, nil
	}
	name, args, _ := strings.Cut(text, " ")
	name, args = strings.ToLower(name), strings.TrimSpace(args)
	if name == "me" && args != "" {
		msg.Text = "* " + from.Nickname() + " " + args
		return msg, nil
	}
	if err := b.tell(ctx, from, b.answer(from, name, args)); err != nil {
		return msg, err // the member is leaving
	}
	return msg, fmt.Errorf("bot: answered /%s: %w", name, chatroom.ErrHandled)
}

// answer returns the bot's answer to the command /name args from a member.
func (b *bot) answer(from *chatroom.Member, name, args string) string {
	switch name {
	case "help":
		return help
	case "who":
		names := from.Room().Nicknames()
		return fmt.Sprintf("%d here: %s", len(names), strings.Join(names, ", "))
	case "time":
		return "server time: " + b.now().UTC().Format(time.RFC3339)
	case "echo":
		if args == "" {
			return "usage: /echo <text>"
		}
		return args
	case "me":
		return "usage: /me <action>"
	}
	return "unknown command /" + name + "; try /help"
}

// announce reminds the room of /help every interval until ctx ends.
// Broadcast never waits for a member's socket, so a slow member cannot hold
// the bot up.
func (b *bot) announce(ctx context.Context, room *chatroom.Room, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if room.Len() == 0 {
			continue // nobody to remind
		}
		msg := chatroom.Message{Type: chatroom.TypeSystem, Nickname: b.name, Text: "psst: type /help to see what I can do"}
		if _, err := room.Broadcast(ctx, msg); err != nil {
			return // the room is closed
		}
	}
}
