module github.com/seed014c2c51/chatroom

go 1.25.0

require (
	github.com/coder/websocket v1.8.15
	golang.org/x/text v0.41.0
	golang.org/x/time v0.14.0
)

require github.com/google/go-cmp v0.7.0
