package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"iter"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

const (
	testTimeout  = 2 * time.Minute       // one whole test, browser included
	waitTimeout  = 20 * time.Second      // one wait for the page to show something
	startTimeout = 20 * time.Second      // the server to listen, or to exit
	pollInterval = 50 * time.Millisecond // how often the page checks a condition
	actionSlack  = 10 * time.Second      // over waitTimeout, for the protocol round trips
	chatDir      = "../examples/chat"    // a module of its own (it needs sqlitestore's)
	chromiumHelp = "install it (apt-get install -y chromium) or set CHROMIUM_PATH"
)

// chromium returns the browser to drive, or skips the test when there is
// none.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("CHROMIUM_PATH=%s: %v", p, err)
		}
		return path
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skip("no Chromium found (chromium, chromium-browser, google-chrome or google-chrome-stable in PATH, or CHROMIUM_PATH): " + chromiumHelp)
	return ""
}

// The example is built once per test binary, from the chatroom module that
// go.mod replaces with the parent directory (it is a tool of this module).
var (
	buildDir   string
	buildChat  = sync.OnceValues(build)
	listeningR = regexp.MustCompile(`msg="chat: listening" addr=(\S+)`)
)

func build() (string, error) {
	dir, err := os.MkdirTemp("", "chatroom-e2e-")
	if err != nil {
		return "", err
	}
	buildDir = dir
	bin := filepath.Join(dir, "chat")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "-C", chatDir, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build in %s: %v\n%s", chatDir, err, out)
	}
	return bin, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// chatServer is examples/chat running as a process of its own, so that a
// test can kill it and start it again on the same port.
type chatServer struct {
	t    *testing.T
	bin  string
	addr string        // 127.0.0.1:port, fixed by the first start
	args []string      // the flags of every run but -addr
	cmd  *exec.Cmd     // the current run
	done chan struct{} // closed when the current run has exited
	log  lockedBuffer  // the output of every run
}

// startChat builds examples/chat if needed and starts it on a free loopback
// port, with a history of 100 messages in memory. The server is stopped
// (SIGTERM) when the test ends.
func startChat(t *testing.T) *chatServer {
	t.Helper()
	return startChatWith(t, inMemory...)
}

// inMemory are the flags of startChat: history in memory, which a restart
// loses.
var inMemory = []string{"-history", "100", "-db", ""}

// startChatWith is startChat with examples/chat's flags (but -addr) given.
func startChatWith(t *testing.T, args ...string) *chatServer {
	t.Helper()
	bin, err := buildChat()
	if err != nil {
		t.Fatal(err)
	}
	s := &chatServer{t: t, bin: bin, addr: "127.0.0.1:0", args: args}
	s.start()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("examples/chat output:\n%s", s.log.String())
		}
	})
	return s
}

// start starts the server on s.addr and waits until it listens.
func (s *chatServer) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, append([]string{"-addr", s.addr}, s.args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout = &s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	ready := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(&s.log, sc.Text())
			if m := listeningR.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
		cmd.Wait()
	}()
	s.cmd, s.done = cmd, done
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case s.addr = <-ready:
	case <-done:
		s.t.Fatalf("examples/chat exited before listening:\n%s", s.log.String())
	case <-timer.C:
		s.kill()
		s.t.Fatalf("examples/chat did not listen within %v:\n%s", startTimeout, s.log.String())
	}
}

// url returns the address of a path of the server.
func (s *chatServer) url(path string) string { return "http://" + s.addr + path }

// kill ends the server at once, as a crash would: no close frame reaches
// anyone, the connections just break.
func (s *chatServer) kill() {
	s.t.Helper()
	s.cmd.Process.Kill()
	s.wait()
}

// stop ends the server as Ctrl-C does, unless it has exited already.
func (s *chatServer) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-s.done:
	case <-timer.C:
		s.t.Errorf("examples/chat did not stop within %v of SIGTERM", startTimeout)
		s.kill()
	}
}

func (s *chatServer) wait() {
	s.t.Helper()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-s.done:
	case <-timer.C:
		s.t.Fatalf("examples/chat did not exit within %v", startTimeout)
	}
}

// restart kills the server and starts a new one on the same port, with the
// same flags. Started by startChat, the new one knows nothing of the old
// one: the history is in memory.
func (s *chatServer) restart() {
	s.t.Helper()
	s.kill()
	s.start()
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gate is a TCP proxy between a page and the server. A test closes it to
// keep the page off the server (new connections are closed as soon as they
// are accepted), drops the page's connections, and opens it again. The
// page is served through it, so it is the page's origin.
type gate struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	open  bool
	deaf  bool // the server's bytes are dropped, not passed to the page
	conns map[net.Conn]struct{}
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, target: target, open: true, conns: make(map[net.Conn]struct{})}
	g.wg.Add(1)
	go g.serve()
	t.Cleanup(g.close)
	return g
}

func (g *gate) url(path string) string { return "http://" + g.ln.Addr().String() + path }

func (g *gate) serve() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		if !g.track(c) {
			c.Close()
			continue
		}
		g.wg.Add(1)
		go g.pipe(c)
	}
}

// track remembers c if the gate is open, and reports whether it is.
func (g *gate) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open {
		g.conns[c] = struct{}{}
	}
	return g.open
}

func (g *gate) forget(cs ...net.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range cs {
		delete(g.conns, c)
		c.Close()
	}
}

func (g *gate) pipe(c net.Conn) {
	defer g.wg.Done()
	up, err := net.DialTimeout("tcp", g.target, startTimeout)
	if err != nil || !g.track(up) {
		g.forget(c)
		if up != nil {
			up.Close()
		}
		return
	}
	copied := make(chan struct{}, 2)
	go func() { io.Copy(up, c); copied <- struct{}{} }()
	go func() { io.Copy(c, g.fromServer(up)); copied <- struct{}{} }()
	<-copied // one side is done: close both, which ends the other copy
	g.forget(c, up)
	<-copied
}

// fromServer is what the gate passes from the server to the page: up's
// bytes, except while the gate is deaf.
func (g *gate) fromServer(up net.Conn) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		for {
			n, err := up.Read(p)
			g.mu.Lock()
			deaf := g.deaf
			g.mu.Unlock()
			if !deaf || err != nil {
				return n, err
			}
		}
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// setDeaf makes the gate drop what the server sends to the pages, or pass
// it again: the page's messages reach the server, and the server's answers
// are lost on the way back, as on a connection that fails right after the
// page sent. A stream resumed after deafness is corrupt: drop the
// connections before making the gate hear again.
func (g *gate) setDeaf(deaf bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deaf = deaf
}

// setOpen opens or closes the gate for new connections.
func (g *gate) setOpen(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = open
}

// drop breaks every connection through the gate, as a lost network would.
func (g *gate) drop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		c.Close()
	}
}

func (g *gate) close() {
	g.ln.Close()
	g.setOpen(false)
	g.drop()
	g.wg.Wait()
}

// browser is one headless Chromium with a fresh profile.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts Chromium for the test, or skips the test without one.
// The browser and its profile go away when the test ends.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// This machine's network is closed: without these, Chromium's own
		// connections (updates, sync, QUIC probes) are refused and slow it.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), // removed after the browser has exited: cleanups run last first
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc) // waits for the browser to exit
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return &browser{t: t, ctx: bctx}
}

// viewport is the size of a tab's page, in CSS pixels.
type viewport struct {
	width, height int64
	mobile        bool
}

var (
	desktop = viewport{width: 860, height: 640}
	phone   = viewport{width: 390, height: 640, mobile: true}
)

// tab is one tab of the browser: one user of the chat.
type tab struct {
	t       *testing.T
	name    string
	ctx     context.Context
	close   context.CancelFunc
	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// newTab opens a tab of the given size. When the test ends, it fails the
// test if the page threw an uncaught exception.
func (b *browser) newTab(name string, vp viewport) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	tb := &tab{t: b.t, name: name, ctx: ctx, close: cancel}
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(2)}
	if vp.mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	// The first action on a context opens its tab: with no deadline of its own.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.width, vp.height, opts...)); err != nil {
		b.t.Fatalf("%s: open a tab: %v", name, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m)
			tb.mu.Unlock()
		}
	}()
	b.t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, m := range tb.console {
			if m.IsException() {
				b.t.Errorf("%s: the page threw: %s", name, m)
			} else if b.t.Failed() {
				b.t.Logf("%s: console: %s", name, m)
			}
		}
	})
	b.t.Cleanup(cancel)
	return tb
}

// do runs actions on the tab within waitTimeout.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout+actionSlack)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %s: %v\n%s", tb.name, what, err, tb.describe())
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("%s: evaluate %s: %v", tb.name, expr, err)
	}
	return v
}

// waitFor waits until a JavaScript predicate holds in the page. The page
// polls it; the test does not sleep.
func (tb *tab) waitFor(what, predicate string) {
	tb.t.Helper()
	tb.waitForWithin(waitTimeout, what, predicate)
}

// waitForWithin is waitFor with a longer wait, for what takes time in
// proportion to its size (thousands of messages), so that a loaded machine
// does not fail it.
func (tb *tab) waitForWithin(wait time.Duration, what, predicate string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, wait+actionSlack)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(pollInterval), chromedp.WithPollingTimeout(wait)))
	if err != nil {
		tb.t.Fatalf("%s: waiting for %s: %v\n%s", tb.name, what, err, tb.describe())
	}
}

// open loads the page and waits for the join form.
func (tb *tab) open(url string) {
	tb.t.Helper()
	tb.do("open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("join-form")))
}

// join fills in the join form, submits it, and waits until the page is
// connected and lists the nickname.
func (tb *tab) join(nickname, room string) {
	tb.t.Helper()
	tb.do("join "+room,
		clear("nickname"), // the page may remember one
		tb.typeText(chromedp.ID("nickname"), nickname),
		clear("room"),
		tb.typeText(chromedp.ID("room"), room),
		chromedp.Click(chromedp.ID("join")),
	)
	tb.waitConnected()
	tb.waitFor(nickname+" in the member list", fmt.Sprintf(`%s.includes(%s)`, membersJS, jsString(nickname)))
}

// clear empties an input. (chromedp.Clear sets the value attribute, which
// no longer counts once the page has set the value.)
func clear(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%s).value = ""`, jsString(id)))
}

// typeText types ASCII text key by key, and inserts any other text at once,
// as an input method commits it.
func (tb *tab) typeText(sel chromedp.ID, text string) chromedp.Action[chromedp.Void] {
	// Long text is inserted at once: a key event per character makes the
	// growing textarea lay out thousands of times.
	ascii := len(text) <= 200
	for _, r := range text {
		if r < ' ' || r > '~' {
			ascii = false
		}
	}
	if ascii {
		return chromedp.SendKeys(sel, text)
	}
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.Focus(sel)(ctx, t); err != nil {
			return chromedp.Void{}, err
		}
		_, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text})
		return chromedp.Void{}, err
	}
}

// say sends a message as the user would, Enter included, and waits for the
// server's echo: then everyone in the room has been sent it.
func (tb *tab) say(text string) {
	tb.t.Helper()
	tb.do("say "+text, tb.typeText(chromedp.ID("text"), text), chromedp.SendKeys(chromedp.ID("text"), kb.Enter))
	tb.waitFor("the echo of "+text, hasMessageJS("", text, true))
}

func (tb *tab) waitConnected() {
	tb.t.Helper()
	tb.waitFor("connected", `document.getElementById("status").dataset.state === "connected"`)
}

// waitMessage waits until the page shows a message from nickname.
func (tb *tab) waitMessage(nickname, text string) {
	tb.t.Helper()
	tb.waitFor(fmt.Sprintf("%s: %s", nickname, text), hasMessageJS(nickname, text, false))
}

// waitMembers waits until the member list is exactly names, in order.
func (tb *tab) waitMembers(names ...string) {
	tb.t.Helper()
	tb.waitFor(fmt.Sprintf("members %q", names),
		fmt.Sprintf(`((got, want) => got.length === want.length && got.every((n, i) => n === want[i]))(%s, %s) &&
			document.querySelector(".member-count").textContent === "%d"`,
			membersJS, mustJSON(names), len(names)))
}

// waitNotice waits until the page shows a notice of that kind and text.
func (tb *tab) waitNotice(kind, text string) {
	tb.t.Helper()
	tb.waitFor(fmt.Sprintf("%s notice %q", kind, text), fmt.Sprintf(
		`[...document.querySelectorAll("#messages li.notice")].some(li => li.dataset.kind === %s && li.querySelector(".text").textContent === %s)`,
		jsString(kind), jsString(text)))
}

// lastMessageID returns the ID of the last message the page shows.
func (tb *tab) lastMessageID() uint64 {
	tb.t.Helper()
	s := eval[string](tb, `[...document.querySelectorAll("#messages li.msg")].at(-1).dataset.id`)
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		tb.t.Fatalf("%s: the last message has id %q", tb.name, s)
	}
	return id
}

// state reads what the page shows.
func (tb *tab) state() pageState {
	tb.t.Helper()
	return eval[pageState](tb, stateJS)
}

// describe is the page's state for a failure message, if it can be read.
func (tb *tab) describe() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	st, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](stateJS))
	if err != nil {
		return fmt.Sprintf("(page state unreadable: %v)", err)
	}
	var out bytes.Buffer
	json.Indent(&out, st, "", "  ")
	return "page state: " + out.String()
}

// screenshot captures the tab's viewport as a PNG.
func (tb *tab) screenshot() []byte {
	tb.t.Helper()
	tb.do("blur", chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`))
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("%s: screenshot: %v", tb.name, err)
	}
	return buf
}

// pageState is what a user sees: the connection status, the member list
// and the lines of the message list.
type pageState struct {
	State   string   `json:"state"`
	Status  string   `json:"status"`
	Members []string `json:"members"`
	Lines   []line   `json:"lines"`
}

// line is one line of the message list: a message or a notice.
type line struct {
	Kind     string `json:"kind"` // "message", a notice's kind (join, leave, status, truncated, error, system) or "day"
	Nickname string `json:"nickname,omitempty"`
	Text     string `json:"text"`
	Mine     bool   `json:"mine,omitempty"`
	ID       string `json:"id,omitempty"`
	// State is that of a message of the user's that the room has not
	// echoed: sending, sent or failed (chatroom.js's outbox); empty for
	// the room's messages.
	State string `json:"state,omitempty"`
}

// messages returns the chat messages the page shows, without IDs.
func (st pageState) messages() []line {
	var out []line
	for _, l := range st.Lines {
		if l.Kind == "message" {
			l.ID = ""
			out = append(out, l)
		}
	}
	return out
}

// count returns how many lines are of kind.
func (st pageState) count(kind string) int {
	n := 0
	for _, l := range st.Lines {
		if l.Kind == kind {
			n++
		}
	}
	return n
}

const membersJS = `[...document.querySelectorAll("#members li")].map(li => li.dataset.nickname)`

const stateJS = `(() => ({
	state: document.getElementById("status").dataset.state,
	status: document.getElementById("status-text").textContent,
	members: ` + membersJS + `,
	lines: [...document.querySelectorAll("#messages li")].map(li => ({
		kind: li.classList.contains("msg") ? "message" : (li.dataset.kind || "day"),
		nickname: li.dataset.nickname || "",
		text: (li.querySelector(".text") || li).textContent,
		mine: li.classList.contains("mine"),
		id: li.dataset.id || "",
		state: li.dataset.state || "",
	})),
}))()`

// hasMessageJS is a predicate: the page shows a message of the room with
// that text (not one of the user's still pending), from nickname (any, if
// empty), marked as the user's own if mine.
func hasMessageJS(nickname, text string, mine bool) string {
	cond := fmt.Sprintf(`!li.classList.contains("pending") && li.querySelector(".text").textContent === %s`, jsString(text))
	if nickname != "" {
		cond += fmt.Sprintf(` && li.dataset.nickname === %s`, jsString(nickname))
	}
	if mine {
		cond += ` && li.classList.contains("mine")`
	}
	return fmt.Sprintf(`[...document.querySelectorAll("#messages li.msg")].some(li => %s)`, cond)
}

// countNoticesJS counts the notices of that kind and text.
func countNoticesJS(kind, text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#messages li.notice")].filter(li => li.dataset.kind === %s && li.querySelector(".text").textContent === %s).length`,
		jsString(kind), jsString(text))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string { return mustJSON(s) }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// sideBySide composes PNG screenshots into one PNG, left to right on a
// plain background.
func sideBySide(shots ...[]byte) ([]byte, error) {
	const margin, gap = 48, 48
	var imgs []image.Image
	width, height := margin, 0
	for _, s := range shots {
		img, err := png.Decode(bytes.NewReader(s))
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
		width += img.Bounds().Dx() + gap
		height = max(height, img.Bounds().Dy())
	}
	width += margin - gap
	height += 2 * margin
	out := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.RGBA{0x2b, 0x2d, 0x42, 0xff}), image.Point{}, draw.Src)
	x := margin
	for _, img := range imgs {
		r := img.Bounds()
		at := image.Rect(x, margin, x+r.Dx(), margin+r.Dy())
		border := at.Inset(-2)
		draw.Draw(out, border, image.NewUniform(color.RGBA{0x44, 0x47, 0x66, 0xff}), image.Point{}, draw.Src)
		draw.Draw(out, at, img, r.Min, draw.Src)
		x += r.Dx() + gap
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// webSockets are the WebSockets a page opened, in order.
type webSockets = iter.Seq2[network.EventWebSocketCreated, error]

// webSockets subscribes to the WebSockets the tab opens, as the browser
// reports them; ranging over it ends with an error after d.
func (tb *tab) webSockets(d time.Duration) webSockets {
	ctx, cancel := context.WithTimeout(tb.ctx, d)
	tb.t.Cleanup(cancel)
	return chromedp.Events(ctx, network.WebSocketCreated)
}
