package load

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// watchSlow observes a member that never reads without reading from it,
// every 50 ms until stop closes or the server closes the connection. It
// records, relative to start, when the member's receive queue (SIOCINQ) last
// grew (it stalled), when the server's send queue for it last grew (from
// then on the server's writes to it block), and when the server closed its
// end.
//
// The client cannot see that close: with its receive window at zero, the
// server's FIN waits behind the data its kernel still holds for it. The
// server's socket can be seen, though, since both ends are on this host:
// its entry in /proc/net/tcp leaves ESTABLISHED when the server closes it.
func (m *member) watchSlow(start time.Time, stop <-chan struct{}) {
	defer close(m.watchDone)
	tc, ok := m.conn.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last, lastSend := -1, -1
	for {
		var queued int
		_ = rc.Control(func(fd uintptr) {
			queued, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		})
		hungUp, sendQueue := serverSocket(tc)
		now := time.Since(start).Seconds()
		if queued > last {
			last = queued
			m.stalledAfter = now
		}
		if sendQueue > lastSend && !hungUp {
			lastSend = sendQueue
			m.blockedAfter = now
		}
		if hungUp {
			m.cutAfter = now
			return
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// serverSocket reports whether the server's end of c, a connection over
// loopback, has left the ESTABLISHED state, and how many bytes its kernel
// holds that c has not yet taken (its send queue).
func serverSocket(c *net.TCPConn) (closed bool, sendQueue int) {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return false, 0
	}
	file := "/proc/net/tcp"
	if remote.IP.To4() == nil {
		file = "/proc/net/tcp6"
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return false, 0
	}
	// The server's socket: local address = the server's, remote port =
	// ours. Ports are hex, upper case, 4 digits.
	serverPort := fmt.Sprintf(":%04X ", remote.Port)
	clientPort := fmt.Sprintf(":%04X ", local.Port)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[1]+" ", serverPort) || !strings.HasSuffix(f[2]+" ", clientPort) {
			continue
		}
		if len(f) > 4 {
			if tx, _, ok := strings.Cut(f[4], ":"); ok {
				q, _ := strconv.ParseInt(tx, 16, 64)
				sendQueue = int(q)
			}
		}
		return f[3] != "01", sendQueue // 01: ESTABLISHED
	}
	return true, 0 // gone
}
