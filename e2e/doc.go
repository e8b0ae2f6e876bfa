// Package e2e tests examples/chat from outside: in a real browser
// (Chromium driven by chromedp) and with independent WebSocket clients
// (Node.js scripts on the ws library, in node/). The tests are in the
// _test.go files; see README.md.
package e2e
