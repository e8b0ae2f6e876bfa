package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
)

// The unit tests of chatroom.js (jsclient/chatroom_test.mjs), on Node's own
// test runner with a scripted WebSocket: the client's logic on its own, of
// which the browser tests show the whole.
func TestNodeChatroomJS(t *testing.T) {
	node := nodePath(t)
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--test", filepath.Join("..", "jsclient", "chatroom_test.mjs")).CombinedOutput()
	if err != nil {
		t.Fatalf("node --test jsclient/chatroom_test.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
