package sqlitestore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/sqlitestore"
)

// The crash server is this test binary run again with crashServe set to a
// database file: it serves, on a free loopback port that it prints
// ("listening <addr>"), the room "lobby" with the envelope and a Durable
// history in that file, until it is killed (or helperTime).
const crashServe = "SQLITESTORE_CRASH_SERVE"

func crashServer(path string) {
	ctx, cancel := context.WithTimeout(context.Background(), helperTime)
	defer cancel()
	rm, db := openCrashRoom(ctx, path)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("listening", ln.Addr())
	srv := &http.Server{Handler: rm, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	<-ctx.Done()
	_ = rm.Close()
	_ = srv.Close()
	<-served
	_ = db.Close()
}

// The bounds of TestCrashClients: crashSenders clients send crashMessages
// messages each, at most crashInFlight unacknowledged at a time; in each of
// the crashKills rounds that end with a kill, each reads crashAcks acks,
// then sends crashDeaf more without reading any.
const (
	crashSenders  = 4
	crashMessages = 120
	crashInFlight = 8
	crashKills    = 2
	crashAcks     = 25
	crashDeaf     = 6
)

// kill -9 a server in the middle of a stream of messages with refs from
// real clients, twice, and restart it on the same SQLite file: the
// clients reconnect, resuming from the greatest ID they saw, and resend
// every message not acknowledged with its ref. Before each kill every
// client stops reading, so the acks of its last messages are lost with
// the connection, though the room had stored all of them but perhaps the
// last (it reads a client's next message only once the previous one is
// written). At the end the file holds every message exactly once, each
// with the ID its ack gave, and the resends of stored messages were
// acknowledged with their first ID, not stored again.
func TestCrashClients(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "chat.db")
	senders := make([]*crashClient, crashSenders)
	for i := range senders {
		senders[i] = &crashClient{nick: fmt.Sprintf("c%d", i), acks: map[string]uint64{}, refs: map[string]string{}, texts: map[string]string{}}
	}
	var resent, deduped, ackedBeforeKills int
	var before uint64 // the greatest ID the file held when the round began
	for round := range crashKills + 1 {
		final := round == crashKills
		srv := startCrashServer(ctx, t, path)
		w := newWatcher(ctx, t, srv.url("watch", 0))
		var wg sync.WaitGroup
		killed := make(chan struct{})
		deaf := make(chan string, crashSenders) // the last text each sent before the kill
		errs := make(chan error, crashSenders)
		for _, c := range senders {
			wg.Go(func() {
				if err := c.run(ctx, srv, final, deaf, killed); err != nil {
					errs <- fmt.Errorf("%s, round %d: %w", c.nick, round, err)
				}
			})
		}
		if !final {
			var last []string
			for range crashSenders {
				select {
				case text := <-deaf:
					last = append(last, text)
				case err := <-errs:
					t.Fatal(err)
				case <-ctx.Done():
					t.Fatal("waiting for the clients to go deaf:", ctx.Err())
				}
			}
			// Once the room delivered each sender's last message, it
			// had written every earlier one.
			w.await(ctx, t, last)
			srv.kill(t)
			close(killed)
		}
		wg.Wait()
		w.close()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
		if final {
			srv.kill(t)
		}
		// What the file holds now, and what the next round's resends
		// must be recognised as.
		stored, last := readStored(ctx, t, path)
		for _, c := range senders {
			r, d := c.settle(t, stored, before)
			resent += r
			deduped += d
		}
		before = last
		if !final {
			acked := 0
			for _, c := range senders {
				acked += len(c.acks)
			}
			ackedBeforeKills = acked
			t.Logf("kill %d: %d messages acknowledged, %d stored", round+1, acked, len(stored))
		}
	}

	stored, _ := readStored(ctx, t, path)
	sent, acked := 0, 0
	for _, c := range senders {
		sent += c.next
		acked += len(c.acks)
		for i := range c.next {
			text := c.text(i)
			id, ok := c.acks[text]
			switch {
			case !ok:
				t.Errorf("%s: never acknowledged", text)
			case stored[text] != id:
				t.Errorf("%s: acknowledged with ID %d, stored with %d", text, id, stored[text])
			}
		}
	}
	if len(stored) != sent {
		t.Errorf("%d messages stored, %d sent", len(stored), sent)
	}
	if deduped < resent-crashKills*crashSenders || deduped == 0 {
		t.Errorf("%d of %d resends recognised; at most one a sender a kill may be new", deduped, resent)
	}
	t.Logf("sent %d, acknowledged before the last kill %d, resent %d, recognised after the restarts %d, acknowledged %d, stored %d",
		sent, ackedBeforeKills, resent, deduped, acked, len(stored))
}

// crashProc is a running crash server process.
type crashProc struct {
	cmd  *exec.Cmd
	addr string
}

// startCrashServer starts the crash server on the database at path and
// waits until it listens.
func startCrashServer(ctx context.Context, t *testing.T, path string) *crashProc {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashServe+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &crashProc{cmd: cmd}
	t.Cleanup(func() { p.kill(t) })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("crash server: %q, %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	p.addr = addr
	return p
}

// url is the address nickname connects to, resuming after since if not 0.
func (p *crashProc) url(nickname string, since uint64) string {
	u := "ws://" + p.addr + "/?nickname=" + nickname
	if since != 0 {
		u += "&since=" + strconv.FormatUint(since, 10)
	}
	return u
}

// kill sends SIGKILL to the server, if it still runs, and reaps it.
func (p *crashProc) kill(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Error(err)
	}
	_ = p.cmd.Wait()
}

// crashClient is one sender, across the rounds.
type crashClient struct {
	nick    string
	next    int               // the number of its next new message
	since   uint64            // the greatest ID it saw
	outbox  []string          // refs sent and not acknowledged, oldest first
	refs    map[string]string // ref → text, of the outbox
	texts   map[string]string // ref → text, of every message sent
	acks    map[string]uint64 // text → the ID its ack gave
	resends []string          // refs resent this round
}

func (c *crashClient) text(i int) string { return fmt.Sprintf("%s-%d", c.nick, i) }

// run connects, resends the outbox, and sends new messages, at most
// crashInFlight unacknowledged. In the final round it returns once every
// message is acknowledged; else, after crashAcks acks, it sends crashDeaf
// more, tells deaf the last text it sent, and drops the connection
// without reading once killed is closed.
func (c *crashClient) run(ctx context.Context, srv *crashProc, final bool, deaf chan<- string, killed <-chan struct{}) error {
	conn, _, err := websocket.Dial(ctx, srv.url(c.nick, c.since), nil)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	c.resends = c.resends[:0]
	for _, ref := range c.outbox {
		if err := c.send(ctx, conn, ref); err != nil {
			return err
		}
		c.resends = append(c.resends, ref)
	}
	acked := 0
	for {
		for len(c.outbox) < crashInFlight && c.next < crashMessages {
			if err := c.sendNew(ctx, conn); err != nil {
				return err
			}
		}
		if final && len(c.outbox) == 0 {
			return conn.Close(websocket.StatusNormalClosure, "")
		}
		if !final && acked >= crashAcks {
			break
		}
		var m chatroom.Message
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			return err
		}
		c.since = max(c.since, m.ID)
		switch m.Type {
		case chatroom.TypeAck:
			text, ok := c.refs[m.Ref]
			if !ok {
				return fmt.Errorf("ack of a ref not sent: %+v", m)
			}
			c.acks[text] = m.ID
			delete(c.refs, m.Ref)
			c.outbox = deleteRef(c.outbox, m.Ref)
			acked++
		case chatroom.TypeError:
			return fmt.Errorf("error frame %+v", m)
		}
	}
	if c.next+crashDeaf > crashMessages {
		return fmt.Errorf("too few messages left (%d) for the deaf phase", crashMessages-c.next)
	}
	for range crashDeaf {
		if err := c.sendNew(ctx, conn); err != nil {
			return err
		}
	}
	deaf <- c.text(c.next - 1)
	select {
	case <-killed:
		return nil // the acks unread are lost with the connection
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendNew sends the client's next message with a new ref.
func (c *crashClient) sendNew(ctx context.Context, conn *websocket.Conn) error {
	ref := "r" + strconv.Itoa(c.next)
	c.refs[ref] = c.text(c.next)
	c.texts[ref] = c.text(c.next)
	c.outbox = append(c.outbox, ref)
	c.next++
	return c.send(ctx, conn, ref)
}

// send sends the message of ref, from the outbox.
func (c *crashClient) send(ctx context.Context, conn *websocket.Conn, ref string) error {
	return wsjson.Write(ctx, conn, map[string]string{"message": c.refs[ref], "ref": ref})
}

// settle checks the acks of the round's resends against stored, what the
// file holds after the round, and returns how many were acknowledged and
// how many of those were recognised: acknowledged with an ID the file
// held up to before, when the round began.
func (c *crashClient) settle(t *testing.T, stored map[string]uint64, before uint64) (resent, recognised int) {
	t.Helper()
	for _, ref := range c.resends {
		text := c.texts[ref]
		id, ok := c.acks[text]
		if !ok {
			continue // the round ended before its ack: resent again next round
		}
		if stored[text] != id {
			t.Errorf("%s resent: acknowledged with ID %d, stored with %d", text, id, stored[text])
		}
		resent++
		if id <= before {
			recognised++
		}
	}
	return resent, recognised
}

// deleteRef returns outbox without ref.
func deleteRef(outbox []string, ref string) []string {
	for i, r := range outbox {
		if r == ref {
			return append(outbox[:i], outbox[i+1:]...)
		}
	}
	return outbox
}

// readStored opens the database at path and returns its frames of the
// room, text → ID, failing the test if a text is there twice.
func readStored(ctx context.Context, t *testing.T, path string) (stored map[string]uint64, last uint64) {
	t.Helper()
	db, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.Room(ctx, "lobby", sqlitestore.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	msgs, more, err := st.Before(ctx, 0, 1<<30)
	if err != nil || more {
		t.Fatalf("Before: more %v, %v", more, err)
	}
	stored = make(map[string]uint64, len(msgs))
	for _, m := range msgs {
		if id, ok := stored[m.Text]; ok {
			t.Errorf("%q stored twice, IDs %d and %d", m.Text, id, m.ID)
		}
		stored[m.Text] = m.ID
		last = max(last, m.ID)
	}
	return stored, last
}

// watcher is a client that only reads, and tells when it has seen the
// messages the test awaits.
type watcher struct {
	conn *websocket.Conn
	done chan struct{} // closed when the reader returns

	mu   sync.Mutex
	seen map[string]bool
	want []string
	all  chan struct{} // closed once every text of want was seen
}

func newWatcher(ctx context.Context, t *testing.T, url string) *watcher {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{conn: conn, done: make(chan struct{}), seen: map[string]bool{}, all: make(chan struct{})}
	go w.read(ctx)
	return w
}

// read records the texts of the messages until the connection ends.
func (w *watcher) read(ctx context.Context) {
	defer close(w.done)
	for {
		var m chatroom.Message
		if err := wsjson.Read(ctx, w.conn, &m); err != nil {
			return
		}
		if m.Type == chatroom.TypeMessage {
			w.mu.Lock()
			w.seen[m.Text] = true
			w.checkLocked()
			w.mu.Unlock()
		}
	}
}

// checkLocked closes all if every awaited text was seen.
func (w *watcher) checkLocked() {
	if w.want == nil || w.all == nil {
		return
	}
	for _, text := range w.want {
		if !w.seen[text] {
			return
		}
	}
	close(w.all)
	w.all = nil
}

// await returns once the watcher has seen every text of want.
func (w *watcher) await(ctx context.Context, t *testing.T, want []string) {
	t.Helper()
	w.mu.Lock()
	all := w.all
	w.want = want
	w.checkLocked()
	w.mu.Unlock()
	select {
	case <-all:
	case <-w.done:
		t.Fatal("the watcher's connection ended before it saw", want)
	case <-ctx.Done():
		t.Fatal("waiting for the watcher:", ctx.Err())
	}
}

// close drops the watcher's connection and waits for its reader.
func (w *watcher) close() {
	w.conn.CloseNow()
	<-w.done
}
