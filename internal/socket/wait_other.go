//go:build !linux

package socket

import "net"

// waiter is Linux's only (wait_linux.go): elsewhere the member's reader
// goes on waiting inside coder/websocket's Reader.
type waiter struct{}

func (*waiter) init(net.Conn) bool { return false }

func (*waiter) ready() bool { return true }

func (*waiter) park() {}
