// Package memstats serves and fetches a server's Go heap after a garbage
// collection, so that a load generator can tell what a connection keeps on
// the heap and in goroutine stacks from what the process's RSS shows.
package memstats

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
)

// Path is where chatserver -memstats serves Handler.
const Path = "/debug/memstats"

// Stats are the figures Handler reports, in bytes but for Goroutines.
type Stats struct {
	HeapAlloc  uint64 `json:"heap_alloc"`  // live heap objects, right after the collection
	HeapInuse  uint64 `json:"heap_inuse"`  // heap spans in use
	StackInuse uint64 `json:"stack_inuse"` // goroutine stacks
	Sys        uint64 `json:"sys"`         // everything the runtime got from the OS
	Goroutines int    `json:"goroutines"`
}

// Handler runs a garbage collection and answers Stats as JSON.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Stats{
			HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse,
			Sys: ms.Sys, Goroutines: runtime.NumGoroutine(),
		})
	})
}

// Fetch gets Stats from url, the server's http://HOST:PORT plus Path.
func Fetch(ctx context.Context, url string) (Stats, error) {
	var s Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s, err
	}
	// No connection kept open: it would count among the server's sockets.
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, fmt.Errorf("memstats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("memstats: %s answered %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("memstats: %w", err)
	}
	return s, nil
}
