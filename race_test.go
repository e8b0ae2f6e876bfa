//go:build race

package chatroom

// raceEnabled: the race detector slows the room several times over, so
// tests that pit a client's speed against the room's scale down.
const raceEnabled = true
