package natsbroker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/seed014c2c51/chatroom/broker"
	"github.com/seed014c2c51/chatroom/internal/serverproc"
	"github.com/seed014c2c51/chatroom/natsbroker"
)

// oldServerEnv names a nats-server binary older than MinServerVersion, for
// the tests of what a JetStreamBroker does with one. Without it, they look
// for Debian's package (nats-server 2.9 in Debian 12), which .ci/run
// installs.
const oldServerEnv = "NATS_SERVER_OLD"

// oldServer returns the path and version of a nats-server binary older
// than MinServerVersion. It skips the test if there is none, except with
// CI=true, where it fails it.
func oldServer(t *testing.T) (path, version string) {
	t.Helper()
	if p := os.Getenv(oldServerEnv); p != "" {
		v, err := binaryVersion(p)
		if err != nil {
			t.Fatalf("%s=%s: %v", oldServerEnv, p, err)
		}
		if !olderThanMin(v) {
			t.Fatalf("%s=%s is nats-server %s, not older than %s", oldServerEnv, p, v, natsbroker.MinServerVersion)
		}
		return p, v
	}
	candidates := []string{"/usr/sbin/nats-server", "/usr/bin/nats-server"}
	if p, err := exec.LookPath("nats-server"); err == nil {
		candidates = append(candidates, p)
	}
	var seen []string
	for _, p := range candidates {
		v, err := binaryVersion(p)
		if err != nil {
			continue
		}
		if olderThanMin(v) {
			return p, v
		}
		seen = append(seen, p+" is "+v)
	}
	msg := fmt.Sprintf("no nats-server older than %s (Debian's package nats-server, or %s=<path>); found: %v",
		natsbroker.MinServerVersion, oldServerEnv, seen)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + ", with CI=true")
	}
	t.Skip(msg)
	return "", ""
}

// binaryVersion runs `path --version`, which prints "nats-server: v2.9.10".
func binaryVersion(path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`nats-server: v(\d+\.\d+\.\d+\S*)`).FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s --version printed %q", path, out)
	}
	return string(m[1]), nil
}

// olderThanMin reports whether version v, as binaryVersion returns it, is
// older than MinServerVersion.
func olderThanMin(v string) bool {
	var major, minor, wantMajor, wantMinor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		return false
	}
	if _, err := fmt.Sscanf(natsbroker.MinServerVersion, "%d.%d", &wantMajor, &wantMinor); err != nil {
		panic(err)
	}
	return major < wantMajor || major == wantMajor && minor < wantMinor
}

// startBinary starts the nats-server binary at path on loopback, with
// JetStream and a temporary store, on port (-1 for any), and returns its
// client URL once it is ready. It is killed when the test ends.
func startBinary(t *testing.T, path string, port int) string {
	t.Helper()
	cmd := exec.Command(path, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", t.TempDir())
	p, err := serverproc.Start(cmd, readyLine, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	// The server logs where it listens before it logs that it is ready.
	m := regexp.MustCompile(`Listening for client connections on (\S+)`).FindStringSubmatch(p.Output())
	if m == nil {
		t.Fatalf("%s did not say where it listens; its output:\n%s", path, p.Output())
	}
	return "nats://" + m[1]
}

// A JetStreamBroker needs per-message TTLs, which an older server drops
// from the stream's configuration without a word: NewJetStream refuses it,
// naming what it lacks and the version needed, rather than returning a
// broker whose every publication fails.
func TestJetStreamRefusesOldServer(t *testing.T) {
	path, version := oldServer(t)
	url := startBinary(t, path, -1)
	nc, err := nats.Connect(url, natsbroker.ConnectOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	b, err := natsbroker.NewJetStream(nc, natsbroker.JetStreamConfig{})
	if !errors.Is(err, natsbroker.ErrUnsupportedServer) {
		t.Fatalf("NewJetStream on nats-server %s: %v, %v; want ErrUnsupportedServer", version, b, err)
	}
	t.Logf("NewJetStream on nats-server %s: %v", version, err)
	for _, want := range []string{"nats-server " + version, "per-message TTLs", "nats-server " + natsbroker.MinServerVersion + " or later"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// Core NATS needs nothing of the server.
	core := newCore(t, nc)
	r, _ := subscribe(t, core, "room")
	publish(t, core, "room", true, "x")
	r.waitData(t, "x")
}

// A broker made before its connection is up learns of the server with its
// first call: every call then fails with ErrUnsupportedServer, and a
// subscription, which waits in the background, says so at Warn.
func TestJetStreamOldServerAfterConnecting(t *testing.T) {
	path, version := oldServer(t)
	p, nc, connected := connectBeforeServer(t)
	logs := &warnings{ch: make(chan string, 16)}
	b := newJS(t, nc, natsbroker.JetStreamConfig{}, natsbroker.WithLogger(slog.New(logs)))
	if _, err := b.Subscribe(ctx(t), "room", func(broker.Publication) {}); err != nil {
		t.Fatalf("Subscribe while disconnected: %v", err)
	}

	startBinary(t, path, p)
	waitFor(t, connected, "the connection")
	calls := map[string]func() error{
		"Publish": func() error { return b.Publish(ctx(t), "room", broker.Publication{Keep: true}) },
		"History": func() error { _, _, err := b.History(ctx(t), "room", 0); return err },
		"SetPresence": func() error {
			return b.SetPresence(ctx(t), "room", "node", []string{"ann"}, time.Second)
		},
		"Presence": func() error { _, err := b.Presence(ctx(t), "room"); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, natsbroker.ErrUnsupportedServer) || !strings.Contains(err.Error(), version) {
			t.Errorf("%s on nats-server %s: %v, want ErrUnsupportedServer naming the version", name, version, err)
		}
	}
	timeout := time.After(waitTimeout)
	for {
		select {
		case msg := <-logs.ch:
			if strings.Contains(msg, natsbroker.ErrUnsupportedServer.Error()) {
				return
			}
		case <-timeout:
			t.Fatal("the subscription did not warn of the unsupported server")
		}
	}
}

// A server without JetStream is refused too.
func TestJetStreamRefusesServerWithoutJetStream(t *testing.T) {
	nc, _ := connect(t, startServerWithoutJetStream(t))
	b, err := natsbroker.NewJetStream(nc, natsbroker.JetStreamConfig{})
	if !errors.Is(err, natsbroker.ErrUnsupportedServer) || !strings.Contains(err.Error(), "needs JetStream") {
		t.Fatalf("NewJetStream without JetStream: %v, %v; want ErrUnsupportedServer saying it needs JetStream", b, err)
	}
	t.Logf("NewJetStream without JetStream: %v", err)
}

// warnings is a slog.Handler that sends each record at Warn or above,
// message and attributes, to ch (dropping it if ch is full).
type warnings struct {
	ch chan string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		return true
	})
	select {
	case w.ch <- sb.String():
	default:
	}
	return nil
}

func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }

func (w *warnings) WithGroup(string) slog.Handler { return w }
