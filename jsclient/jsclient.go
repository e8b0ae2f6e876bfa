// Package jsclient serves chatroom.js, the browser client of package
// chatroom, and its TypeScript declarations, as they are: an ES module with
// no dependencies and no build step. The folder holding this file is also
// a folder to copy; its README.md documents the module's API.
//
// Mount it under a prefix, and import it from that prefix in the page:
//
//	mux.Handle("GET /js/", http.StripPrefix("/js", jsclient.Handler()))
//
//	<script type="module">
//	import { ChatClient } from "/js/chatroom.js";
//	</script>
package jsclient

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed chatroom.js chatroom.d.ts
var files embed.FS

// names are the files Handler serves.
var names = [...]string{"chatroom.js", "chatroom.d.ts"}

// mediaType is the Content-Type of a file of names.
func mediaType(name string) string {
	if strings.HasSuffix(name, ".d.ts") {
		return "text/plain; charset=utf-8" // TypeScript has no registered type
	}
	return "text/javascript; charset=utf-8"
}

// FS returns the module's files: chatroom.js and chatroom.d.ts.
func FS() fs.FS { return files }

// Handler serves the module's files at /chatroom.js and /chatroom.d.ts of
// the paths it is given (mount it with http.StripPrefix), and 404 for
// anything else. Each file has a strong ETag, its SHA-256, so a browser
// revalidates it cheaply; "Cache-Control: no-cache" makes it revalidate,
// so that a new release is picked up at once.
func Handler() http.Handler {
	type file struct {
		name string
		body []byte
		etag string
	}
	byPath := make(map[string]file, len(names))
	for _, name := range names {
		body, err := files.ReadFile(name)
		if err != nil {
			panic(err) // unreachable: the files are embedded
		}
		sum := sha256.Sum256(body)
		byPath["/"+name] = file{name: name, body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := byPath[path.Clean("/"+strings.TrimPrefix(r.URL.Path, "/"))]
		if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", mediaType(f.name))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
	})
}
