// Command chatserver serves the chat protocol at /chat with one of the
// benchmarked designs:
//
//	chatserver -impl chatroom -addr 127.0.0.1:0
//
// It prints "listening HOST:PORT" as its first line on stdout and exits on
// SIGINT, SIGTERM or when its standard input is closed (unless
// -exit-on-stdin=false). With -cpuprofile it writes a CPU profile on exit.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/seed014c2c51/chatroom/benchmarks/internal/servers"
	"github.com/seed014c2c51/chatroom/benchmarks/internal/sysutil"
)

func main() {
	impl := flag.String("impl", "chatroom", fmt.Sprintf("design to serve, one of %v", servers.Names()))
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file on exit")
	stdinExit := flag.Bool("exit-on-stdin", true, "exit when standard input is closed")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("chatserver: ")

	if err := run(*impl, *addr, *cpuprofile, *stdinExit); err != nil {
		log.Fatal(err)
	}
}

func run(impl, addr, cpuprofile string, stdinExit bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing non-loopback address %q", addr)
	}
	if _, err := sysutil.RaiseFileLimit(); err != nil {
		log.Printf("raising RLIMIT_NOFILE: %v", err)
	}
	handler, stop, err := servers.New(impl)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				log.Printf("closing profile: %v", err)
			}
		}()
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Printf("listening %s\n", ln.Addr())

	quit := make(chan os.Signal, 1)
	signal.Notify(quit, syscall.SIGINT, syscall.SIGTERM)
	stdinDone := make(chan struct{})
	if stdinExit {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(stdinDone)
		}()
	}
	select {
	case <-quit:
	case <-stdinDone:
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	_ = srv.Close() // the listener; hijacked connections are the design's
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(3 * time.Second): // a design stuck on a blocked write
	}
	return nil
}
