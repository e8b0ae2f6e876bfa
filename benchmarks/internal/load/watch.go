package load

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// watchSlow observes a member that never reads without reading from it,
// every 250 ms until stop closes or the server closes the connection. It
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
	tick := time.NewTicker(250 * time.Millisecond)
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

// serverSocket reports whether the server's end of c, an IPv4 connection
// over loopback, has left the ESTABLISHED state, and how many bytes its
// kernel holds that c has not yet taken (its send queue). It looks for the
// one line it needs rather than parsing the table, to keep the load
// generator's own CPU out of the measurement.
func serverSocket(c *net.TCPConn) (closed bool, sendQueue int) {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 || local.IP.To4() == nil || remote.IP.To4() == nil {
		return false, 0
	}
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false, 0
	}
	// The server's socket: local address = the server's, remote = ours.
	// Addresses are little-endian hex, ports big-endian hex, then the state
	// and "tx_queue:rx_queue": "0100007F:1F90 0100007F:C350 01 00000000:".
	hexAddr := func(a *net.TCPAddr) string {
		return fmt.Sprintf("%08X:%04X", binary.LittleEndian.Uint32(a.IP.To4()), a.Port)
	}
	key := []byte(hexAddr(remote) + " " + hexAddr(local) + " ")
	i := bytes.Index(data, key)
	if i < 0 {
		return true, 0 // gone
	}
	rest := data[i+len(key):]
	if len(rest) < 11 {
		return false, 0
	}
	q, _ := strconv.ParseInt(string(rest[3:11]), 16, 64)
	return string(rest[:2]) != "01", int(q) // 01: ESTABLISHED
}
