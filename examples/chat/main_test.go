package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

func TestChatServer(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, io.Discard, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}

	// The page.
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(page, []byte("/chat")) {
		t.Fatalf("GET / = %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(page))
	}
	if resp, err := http.Get("http://" + addr + "/nope"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /nope = %v, %v; want 404", resp, err)
	}

	// The tutorial's protocol, byte for byte.
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sei, _, err := websocket.Dial(dctx, "ws://"+addr+"/chat?nickname=sei", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sei.CloseNow()
	if err := sei.Write(dctx, websocket.MessageText, []byte(`{"message": "hello"}`)); err != nil {
		t.Fatal(err)
	}
	_, got, err := sei.Read(dctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`{"nickname":"sei","message":"hello"}`, string(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// SIGINT's path: the context ends, members get 1001, run returns nil.
	stop()
	_, _, err = sei.Read(dctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
		t.Errorf("client saw %v, want close status 1001", err)
	}
	if err := <-done; err != nil {
		t.Errorf("run = %v, want nil after a clean shutdown", err)
	}
}

func TestBadFlag(t *testing.T) {
	if err := run(context.Background(), []string{"-nope"}, io.Discard, nil); err == nil {
		t.Error("run accepted an unknown flag")
	}
}

func TestDisplayAddr(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"[::]:8000", "localhost:8000"},
		{"0.0.0.0:8000", "localhost:8000"},
		{"127.0.0.1:8000", "127.0.0.1:8000"},
	} {
		if got := displayAddr(fakeAddr(tt.in)); got != tt.want {
			t.Errorf("displayAddr(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }
