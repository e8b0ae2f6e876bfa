// Package e2e tests examples/chat in a real browser: Chromium driven by
// chromedp. The tests are in the _test.go files; see README.md.
package e2e
