package chatroom

import (
	"time"

	"github.com/seed014c2c51/chatroom/internal/cputime"
)

// cpuTime returns the CPU time the process has used, user and system (0
// where it is not measured).
func cpuTime() time.Duration { return cputime.Process() }
