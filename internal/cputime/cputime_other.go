//go:build !unix

// Package cputime reads the CPU time a process has used, for the
// benchmarks of the library and its adapters: on a shared machine it
// measures the code, where wall time measures the neighbours too.
package cputime

import "time"

// Process is not measured here: it returns 0, and benchmarks report 0
// CPU time.
func Process() time.Duration { return 0 }
