//go:build unix

// Package cputime reads the CPU time a process has used, for the
// benchmarks of the library and its adapters: on a shared machine it
// measures the code, where wall time measures the neighbours too.
package cputime

import (
	"syscall"
	"time"
)

// Process returns the CPU time the process has used, user and system.
func Process() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
