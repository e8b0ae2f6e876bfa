// Package webchat is the chat page the examples serve: a single page, built
// by hand (no build step, no CDN), that joins the rooms at
// /rooms/{room}/chat with presence, notices, history and reconnection. It
// talks to the rooms through chatroom.js, the library's client (package
// jsclient), which Mount serves next to the page's own files.
// examples/chat and examples/cluster serve it; it is internal because it is
// part of the examples, not of the library.
package webchat

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/seed014c2c51/chatroom/jsclient"
)

//go:embed static
var static embed.FS

// Mount routes the page at "GET /{$}" and its files at
// "GET /static/{file}" of mux, chatroom.js and chatroom.d.ts among them.
func Mount(mux *http.ServeMux) {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // unreachable: the directory is embedded
	}
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		panic(err) // unreachable: the file is embedded
	}
	fileServer := http.FileServerFS(files)
	client := jsclient.Handler()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w.Header())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(index)
	})
	mux.HandleFunc("GET /static/{file}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("file") == "index.html" {
			// FileServer would redirect it to ./; the page lives at /.
			http.NotFound(w, r)
			return
		}
		pageHeaders(w.Header())
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + r.PathValue("file")
		if _, err := fs.Stat(jsclient.FS(), r.PathValue("file")); err == nil {
			client.ServeHTTP(w, r2)
			return
		}
		fileServer.ServeHTTP(w, r2)
	})
}

// pageHeaders sets the headers of the page and its files. The page renders
// everything it receives as text; the policy is a second line of defence:
// no inline script, nothing from another origin.
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; "+
		"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}
