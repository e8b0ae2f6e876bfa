// Command auth shows token authentication end to end: a client logs in over
// HTTP, receives a signed token, and opens the chat WebSocket with it; the
// room takes the member's nickname from the token, never from the client.
//
//	go run ./examples/auth                  # port 8002, password "chatroom"
//	go run ./examples/auth -addr :9000 -password s3cret -ttl 15m -key-file key
//
// It serves
//
//	POST /login    a form or JSON body with "nickname" and "password"; answers
//	               {"token":"…","nickname":"sei","expires":"2026-11-23T09:00:00Z"},
//	               or 429 Too Many Requests to a client over its login rate
//	GET  /chat     the room (WebSocket); the token goes in the "token" query
//	               parameter (browsers cannot set headers on a WebSocket) or,
//	               for other clients, in an "Authorization: Bearer" header
//
// There is no user database: anyone who knows the one shared demo password
// (-password) may log in under any valid nickname. A real application
// checks its users there, and only there: the rest does not change.
//
// # Login throttle
//
// Every POST /login is counted against its client's address, before the body
// is read and so before the password is checked: a burst of 5 attempts
// (-login-burst), then one a second (-login-interval). Beyond that the
// answer is 429 Too Many Requests, with a Retry-After header (in whole
// seconds) and a plain-text reason, and the password is not checked: a
// program that could have had 10,000 guesses checked in a second has one
// checked. An IPv6 client is counted by its /64 network, which a single
// subscriber commonly has whole. The throttle belongs to the server (one per
// run) and its memory is bounded: a client that has not tried for the time
// its burst takes to refill is forgotten, and at most 10,000 clients are
// tracked; while that many have all tried recently, a new client is refused
// with 429 too. Behind a reverse proxy every client has the proxy's address,
// so they would share one budget: count them by the address the proxy
// reports instead (as chatroom.WithClientIP does for the rooms), and trust
// that only from the proxy. The HTTP server's timeouts and header limit are
// those of examples/internal/serve (-read-timeout bounds a login's body
// too).
//
// A token is base64url(JSON claims) "." base64url(HMAC-SHA256 of the first
// part), signed with a key of the server's: a random one per process unless
// -key-file names a file holding one (at least 32 bytes), so that tokens
// survive restarts. The claims are the nickname and the expiry, in Unix
// seconds:
//
//	{"sub":"sei","exp":1795424400}
//
// The room checks the token before the upgrade with
// chatroom.WithAuthenticator. A missing, forged or expired token is answered
// as the tutorial does: the connection is accepted and at once closed with
// status 4001 "Unauthorized", which browser code can read (an HTTP status it
// cannot). With -http-unauthorized the room uses chatroom.WithHTTPUnauthorized
// instead, and refuses with HTTP 401 before the upgrade, which suits
// non-browser clients. A member whose token expires while it is connected is
// closed with 4001 "token expired": the client logs in again.
//
// SIGINT or SIGTERM shuts the server down gracefully: members receive close
// status 1001.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/examples/internal/serve"
)

const (
	minKeySize      = 32      // bytes of an HMAC-SHA256 key
	maxLoginBody    = 4 << 10 // bytes of a login request
	shutdownTimeout = 10 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "auth:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, then shuts down within 10 seconds. If ready is
// not nil, it receives the listening address once the server accepts
// connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("auth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":8002", "address to listen on")
	password := fs.String("password", "chatroom", "the demo password everyone logs in with")
	ttl := fs.Duration("ttl", time.Hour, "how long a token is valid")
	keyFile := fs.String("key-file", "", "file holding the token signing key, at least 32 bytes (default: a random key per process)")
	httpUnauthorized := fs.Bool("http-unauthorized", false, "refuse bad tokens with HTTP 401 instead of closing with 4001")
	loginBurst := fs.Int("login-burst", defaultLoginBurst, "login attempts a client address may make at once")
	loginInterval := fs.Duration("login-interval", defaultLoginInterval, "how often a client address may try to log in once its burst is spent")
	limits := serve.Defaults()
	limits.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	case *password == "":
		return errors.New("-password must not be empty")
	case *ttl < time.Second:
		return fmt.Errorf("-ttl %v: must be at least a second", *ttl)
	case *loginBurst < 1:
		return fmt.Errorf("-login-burst %d: must be at least 1", *loginBurst)
	case *loginInterval <= 0:
		return fmt.Errorf("-login-interval %v: must be positive", *loginInterval)
	}
	if err := limits.Validate(); err != nil {
		return err
	}
	key, err := loadKey(*keyFile)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	tokens := &signer{key: key, ttl: *ttl, now: time.Now}

	opts := []chatroom.Option{
		chatroom.WithLogger(log),
		chatroom.WithAuthenticator(tokens.authenticate),
		chatroom.OnJoin(closeAtExpiry),
	}
	if *httpUnauthorized {
		opts = append(opts, chatroom.WithHTTPUnauthorized())
	}
	room := chatroom.New(opts...)

	mux := http.NewServeMux()
	mux.Handle("POST /login", &loginHandler{
		tokens:   tokens,
		password: *password,
		throttle: newLoginThrottle(*loginInterval, *loginBurst, maxLoginClients, time.Now),
		clientIP: chatroom.RemoteIP,
		log:      log,
	})
	mux.Handle("GET /chat", room)
	srv := limits.Server(mux, log)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Info("auth: listening", "addr", ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr().String()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}

	log.Info("auth: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// http.Server.Shutdown neither closes nor waits for WebSocket
	// connections, which it no longer tracks once upgraded: the room does.
	err = errors.Join(srv.Shutdown(shutdownCtx), room.Shutdown(shutdownCtx))
	if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// loadKey reads the signing key from path, or makes a random one if path is
// empty. Surrounding white space in the file is ignored, so that
// `openssl rand -hex 32 > key` makes a good one.
func loadKey(path string) ([]byte, error) {
	if path == "" {
		key := make([]byte, minKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		return key, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key := []byte(strings.TrimSpace(string(b)))
	if len(key) < minKeySize {
		return nil, fmt.Errorf("-key-file %s: %d bytes, want at least %d", path, len(key), minKeySize)
	}
	return key, nil
}

// claims is what a token says.
type claims struct {
	Nickname string `json:"sub"`
	Expires  int64  `json:"exp"` // Unix seconds
}

func (c claims) expires() time.Time { return time.Unix(c.Expires, 0) }

// Why a token is refused. They reach the log at Debug (see
// chatroom.WithLogger), never the client, which only learns "Unauthorized".
var (
	errNoToken   = errors.New("no token")
	errMalformed = errors.New("malformed token")
	errSignature = errors.New("bad token signature")
	errExpired   = errors.New("token expired")
)

// signer issues and verifies tokens.
type signer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

var b64 = base64.RawURLEncoding

// issue returns a token for nickname and when it expires.
func (s *signer) issue(nickname string) (string, time.Time) {
	c := claims{Nickname: nickname, Expires: s.now().Add(s.ttl).Unix()}
	payload, err := json.Marshal(c)
	if err != nil {
		panic(err) // unreachable: claims always marshal
	}
	p := b64.EncodeToString(payload)
	return p + "." + b64.EncodeToString(s.sign(p)), c.expires()
}

func (s *signer) sign(payload string) []byte {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(payload))
	return mac.Sum(nil)
}

// verify checks token's signature, then its expiry, and returns its claims.
func (s *signer) verify(token string) (claims, error) {
	if token == "" {
		return claims{}, errNoToken
	}
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return claims{}, errMalformed
	}
	got, err := b64.DecodeString(sig)
	if err != nil {
		return claims{}, errMalformed
	}
	// Compare the signature before reading a byte of the payload.
	if !hmac.Equal(got, s.sign(p)) {
		return claims{}, errSignature
	}
	payload, err := b64.DecodeString(p)
	if err != nil {
		return claims{}, errMalformed
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil || c.Nickname == "" {
		return claims{}, errMalformed
	}
	if !s.now().Before(c.expires()) {
		return claims{}, errExpired
	}
	return c, nil
}

// authenticate is the room's authenticator: it runs before the upgrade and
// names the member after the token's subject. The nickname query parameter
// is ignored, so nobody can pass as another. The claims ride along in
// Identity.Data for the hooks.
func (s *signer) authenticate(r *http.Request) (chatroom.Identity, error) {
	c, err := s.verify(tokenFrom(r))
	if err != nil {
		return chatroom.Identity{}, err
	}
	return chatroom.Identity{ID: c.Nickname, Nickname: c.Nickname, Data: c}, nil
}

// tokenFrom finds the token in an "Authorization: Bearer" header, or else
// in the "token" query parameter.
func tokenFrom(r *http.Request) string {
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return r.URL.Query().Get("token")
}

// closeAtExpiry is the join hook: the token was checked once, before the
// upgrade, so the hook closes the member when the token expires. The timer
// runs on a goroutine of its own and Member.Close returns at once; the
// hook's context ends when the member leaves, which stops the timer.
func closeAtExpiry(ctx context.Context, m *chatroom.Member) error {
	c, ok := m.Identity().Data.(claims)
	if !ok {
		return errors.New("no claims") // unreachable: every member has a token
	}
	t := time.AfterFunc(time.Until(c.expires()), func() {
		m.Close(chatroom.StatusUnauthorized, "token expired")
	})
	context.AfterFunc(ctx, func() { t.Stop() })
	return nil
}

// loginRequest is the body of POST /login, as a form or as JSON.
type loginRequest struct {
	Nickname string `json:"nickname"`
	Password string `json:"password"`
}

// loginResponse is the answer to a successful login.
type loginResponse struct {
	Token    string    `json:"token"`
	Nickname string    `json:"nickname"`
	Expires  time.Time `json:"expires"`
}

// loginHandler answers POST /login with a token: 429 for a client over its
// login rate, 400 for a malformed body or an invalid nickname, 401 for a
// wrong password, 413 for a body over 4 KiB.
type loginHandler struct {
	tokens   *signer
	password string
	throttle *loginThrottle
	clientIP func(*http.Request) string // the address a client's attempts count against
	log      *slog.Logger
}

func (h *loginHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Before anything else, the body included: a refused attempt costs
	// the server as little as it can.
	ip := h.clientIP(r)
	if wait, err := h.throttle.allow(clientKey(ip)); err != nil {
		secs := max(1, int(math.Ceil(wait.Seconds())))
		h.log.Debug("auth: login throttled", "ip", ip, "reason", err, "retry_after", secs)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		http.Error(w, fmt.Sprintf("%v; try again in %d s", err, secs), http.StatusTooManyRequests)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	var req loginRequest
	var err error
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		err = json.NewDecoder(r.Body).Decode(&req)
	} else if err = r.ParseForm(); err == nil {
		req.Nickname, req.Password = r.PostForm.Get("nickname"), r.PostForm.Get("password")
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, "malformed request", http.StatusBadRequest)
		return
	}
	// The room checks the token's nickname too; checking it here tells
	// the user now rather than at the WebSocket.
	if err := chatroom.ValidateNickname(req.Nickname); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if subtle.ConstantTimeCompare([]byte(req.Password), []byte(h.password)) != 1 {
		http.Error(w, "wrong password", http.StatusUnauthorized)
		return
	}
	token, expires := h.tokens.issue(req.Nickname)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(loginResponse{Token: token, Nickname: req.Nickname, Expires: expires.UTC()})
}
