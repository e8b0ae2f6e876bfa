// Package sysutil holds the small OS helpers both binaries need.
package sysutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// RaiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and returns
// the new soft limit.
func RaiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Cur, nil
}

// RSSKiB returns the resident set size (VmRSS) of process pid, in KiB.
func RSSKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			return strconv.ParseInt(fields[0], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; it is 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// ProcCPUSeconds returns the user plus system CPU time process pid has used.
func ProcCPUSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may contain spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return float64(utime+stime) / clockTicks, nil
}

// SelfCPUSeconds returns the user plus system CPU time this process has used.
func SelfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// Sockstat is the part of /proc/net/sockstat that sizes TCP: the sockets in
// use and the pages TCP has charged for socket buffers. It covers every
// socket of the network namespace, so both ends of a loopback connection,
// and anything else running on the host.
type Sockstat struct {
	SocketsUsed int64 `json:"sockets_used"`  // "sockets: used"
	TCPInuse    int64 `json:"tcp_inuse"`     // "TCP: inuse"
	TCPMemPages int64 `json:"tcp_mem_pages"` // "TCP: mem", in pages
}

// ReadSockstat reads /proc/net/sockstat.
func ReadSockstat() (Sockstat, error) {
	var s Sockstat
	data, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		// Each line is "NAME: key value key value ...".
		vals := map[string]int64{}
		for i := 1; i+1 < len(f); i += 2 {
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return s, fmt.Errorf("/proc/net/sockstat: %q: %w", line, err)
			}
			vals[f[i]] = v
		}
		switch f[0] {
		case "sockets:":
			s.SocketsUsed = vals["used"]
		case "TCP:":
			s.TCPInuse, s.TCPMemPages = vals["inuse"], vals["mem"]
		}
	}
	return s, nil
}

// SlabKiB returns the kernel's slab memory (the "Slab" line of
// /proc/meminfo), in KiB: where struct sock, the socket inode, the file and
// the epoll entry of every connection live. It is system-wide.
func SlabKiB() (int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Slab:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, errors.New("no Slab in /proc/meminfo")
}

// SockMem sums the kernel's memory accounting (ss -m, "skmem") over a set
// of TCP sockets, in bytes.
type SockMem struct {
	Sockets int   `json:"sockets"`
	Rmem    int64 `json:"rmem"`        // r: received data not yet read
	Wmem    int64 `json:"wmem_queued"` // w: data queued for sending, unacknowledged data included
	Fwd     int64 `json:"fwd_alloc"`   // f: charged to the socket in advance, not yet used
	// Queued counts the sockets with received data not yet read.
	Queued int `json:"queued"`
}

// Charged is what the sockets cost in TCP's memory accounting (the pages
// /proc/net/sockstat's "mem" counts): data held plus what is reserved.
func (m SockMem) Charged() int64 { return m.Rmem + m.Wmem + m.Fwd }

// PortSockMem runs ss for the established TCP sockets whose local port
// (local true: the server's ends) or remote port (false: the clients' ends)
// is port, and sums their skmem.
func PortSockMem(ctx context.Context, port int, local bool) (SockMem, error) {
	dir := "dport"
	if local {
		dir = "sport"
	}
	out, err := exec.CommandContext(ctx, "ss", "-t", "-n", "-m", "-H", "state", "established",
		"( "+dir+" = :"+strconv.Itoa(port)+" )").Output()
	if err != nil {
		return SockMem{}, fmt.Errorf("ss: %w", err)
	}
	return parseSkmem(string(out))
}

// parseSkmem sums the "skmem:(r0,rb131072,t0,tb2626560,f0,w0,o0,bl0,d0)"
// fields of ss -m output, one per socket.
func parseSkmem(out string) (SockMem, error) {
	var m SockMem
	for {
		i := strings.Index(out, "skmem:(")
		if i < 0 {
			return m, nil
		}
		out = out[i+len("skmem:("):]
		j := strings.IndexByte(out, ')')
		if j < 0 {
			return m, errors.New("ss: unterminated skmem")
		}
		m.Sockets++
		for _, kv := range strings.Split(out[:j], ",") {
			k := strings.TrimRight(kv, "0123456789")
			v, err := strconv.ParseInt(kv[len(k):], 10, 64)
			if err != nil {
				return m, fmt.Errorf("ss: skmem field %q: %w", kv, err)
			}
			switch k {
			case "r":
				m.Rmem += v
				if v > 0 {
					m.Queued++
				}
			case "w":
				m.Wmem += v
			case "f":
				m.Fwd += v
			}
		}
		out = out[j+1:]
	}
}

// SlabCaches returns the bytes each slab cache holds (objects × object
// size) from /proc/slabinfo, which is often readable by root only.
func SlabCaches() (map[string]int64, error) {
	data, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return nil, err
	}
	return parseSlabinfo(string(data))
}

// parseSlabinfo reads "name active_objs num_objs objsize ..." lines after
// the two header lines of /proc/slabinfo.
func parseSlabinfo(data string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(line, "slabinfo") || strings.HasPrefix(line, "#") {
			continue
		}
		num, err1 := strconv.ParseInt(f[2], 10, 64)
		size, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("/proc/slabinfo: %q", line)
		}
		out[f[0]] = num * size
	}
	return out, nil
}
