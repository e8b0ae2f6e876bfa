package jsclient_test

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/seed014c2c51/chatroom/jsclient"
)

// A host mounts the module under a prefix of its own.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("GET /js/", http.StripPrefix("/js", jsclient.Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/js/chatroom.js")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
	// Output: 200 text/javascript; charset=utf-8
}

// The handler serves the embedded files byte for byte, answers a
// revalidation with 304, and nothing else.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("/static", jsclient.Handler()))
	defer srv.Close()
	for _, tc := range []struct {
		path, contentType string
	}{
		{"/static/chatroom.js", "text/javascript; charset=utf-8"},
		{"/static/chatroom.d.ts", "text/plain; charset=utf-8"},
	} {
		want, err := fs.ReadFile(jsclient.FS(), tc.path[len("/static/"):])
		if err != nil {
			t.Fatal(err)
		}
		resp, body := get(t, srv.URL+tc.path, "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tc.contentType || !bytes.Equal(body, want) {
			t.Errorf("GET %s: %d %q, %d bytes; want 200 %q, %d bytes", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), tc.contentType, len(want))
		}
		etag := resp.Header.Get("ETag")
		if etag == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v", tc.path, resp.Header)
		}
		if resp, _ := get(t, srv.URL+tc.path, etag); resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %s: %d, want 304", tc.path, etag, resp.StatusCode)
		}
	}
	for _, p := range []string{"/static/", "/static/chatroom_test.mjs", "/static/README.md", "/static/jsclient.go", "/static/../chatroom.js/x"} {
		if resp, _ := get(t, srv.URL+p, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}

func get(t *testing.T, url, etag string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
