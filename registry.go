package chatroom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// A Registry serves many named rooms from one handler. The room's name comes
// from the request, by default from the {room} wildcard of an http.ServeMux
// pattern:
//
//	rooms := chatroom.NewRegistry()
//	mux.Handle("/rooms/{room}/chat", rooms)
//
// A room is created when its first client connects and removed, with
// everything it kept, when its last client has left, unless the host keeps
// it (Open, WithKeepWhenEmpty). Rooms share nothing: a frame sent in one
// never reaches another. Create registries with NewRegistry.
type Registry struct {
	cfg registryConfig

	mu     sync.Mutex // guards the fields below; taken before any room's lock
	rooms  map[string]*Room
	closed bool
}

// A RegistryOption configures a Registry. Pass options to NewRegistry, in
// any order. They follow the rules of Option: a zero argument means the
// default, which the option's doc names; an argument out of range makes
// NewRegistry panic with a message that begins "chatroom: " and the
// option's name; given more than once, an option's last call wins.
type RegistryOption func(*registryConfig)

type registryConfig struct {
	roomName    func(*http.Request) (string, error)
	validate    func(name string) error
	maxRooms    int                        // 0: no cap
	roomOptions func(name string) []Option // nil: none
}

// NewRegistry returns a registry configured by opts. Like a Room, it starts
// no goroutine.
func NewRegistry(opts ...RegistryOption) *Registry {
	rg := &Registry{rooms: make(map[string]*Room)}
	for _, opt := range opts {
		opt(&rg.cfg)
	}
	rg.cfg.resolve()
	return rg
}

// resolve checks the options and puts in the defaults.
func (c *registryConfig) resolve() {
	if c.roomName == nil {
		c.roomName = func(r *http.Request) (string, error) { return r.PathValue("room"), nil }
	}
	if c.validate == nil {
		c.validate = ValidateRoomName
	}
	if c.maxRooms < 0 {
		panic(fmt.Sprintf("chatroom: WithMaxRooms: n is %d; it must be > 0, or 0 for no cap", c.maxRooms))
	}
}

// WithRoomName sets how the registry finds the room's name in a request
// (default r.PathValue("room")). An error refuses the request with HTTP 400
// and the error's text.
func WithRoomName(fn func(r *http.Request) (string, error)) RegistryOption {
	return func(c *registryConfig) { c.roomName = fn }
}

// WithRoomNameValidator replaces ValidateRoomName, the default. A name it
// refuses is answered with HTTP 400 and the error's text before the
// upgrade, and makes Registry.Open fail.
func WithRoomNameValidator(fn func(name string) error) RegistryOption {
	return func(c *registryConfig) { c.validate = fn }
}

// WithMaxRooms caps the number of rooms (default 0, no cap). A request that
// would create one more is refused with HTTP 503 before the upgrade, and
// Registry.Open fails with ErrTooManyRooms; joining an existing room still
// works.
func WithMaxRooms(n int) RegistryOption {
	return func(c *registryConfig) { c.maxRooms = n }
}

// WithRoomOptions gives each room the options fn returns for its name
// (default: none), whether the options are the same for every room or
// differ by room:
//
//	chatroom.WithRoomOptions(func(name string) []chatroom.Option {
//		opts := []chatroom.Option{chatroom.WithPresence()}
//		if name == "announcements" {
//			opts = append(opts, chatroom.OnMessage(adminsOnly))
//		}
//		return opts
//	})
//
// It is the one way to configure a registry's rooms, and a function rather
// than a list, because some options hold something that each room must
// have its own of (a Store, a hook's state): fn makes them anew for every
// room. It runs whenever the registry creates a room, on a request's
// goroutine or Open's, with the registry's lock held, so it must not call
// the registry. New checks the options then, so a bad one panics there
// (net/http recovers the panic of a request and logs it); test them with
// Open. The registry names its rooms: a WithName among the options has no
// effect.
func WithRoomOptions(fn func(name string) []Option) RegistryOption {
	return func(c *registryConfig) { c.roomOptions = fn }
}

// WithKeepWhenEmpty keeps a room in its Registry when its last client
// leaves, with its history, until it is shut down. It has no effect outside
// a Registry (WithRoomOptions).
func WithKeepWhenEmpty() Option {
	return func(c *config) { c.keepWhenEmpty = true }
}

// MaxRoomNameLength is the longest room name, in runes, that
// ValidateRoomName accepts.
const MaxRoomNameLength = 64

// ValidateRoomName is the default room name check: 1 to MaxRoomNameLength
// letters, digits, marks and the characters - _ . ~, not only dots. Such a
// name is one path segment that neither browsers nor servers read as "." or
// "..", and is safe in a log. Failures wrap ErrInvalidRoomName.
func ValidateRoomName(name string) error {
	switch n := utf8.RuneCountInString(name); {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidRoomName)
	case n > MaxRoomNameLength:
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidRoomName, MaxRoomNameLength)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not UTF-8", ErrInvalidRoomName)
	case strings.Trim(name, ".") == "":
		return fmt.Errorf("%w: only dots", ErrInvalidRoomName)
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) && !strings.ContainsRune("-_.~", r) {
			return fmt.Errorf("%w: %q not allowed", ErrInvalidRoomName, r)
		}
	}
	return nil
}

// ServeHTTP serves the room the request names, creating it if needed, as
// Room.ServeHTTP does. Before that it answers HTTP 400 for a missing or
// invalid room name and 503 once the registry is shut down or when
// WithMaxRooms forbids another room.
func (rg *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, err := rg.cfg.roomName(r)
	if err == nil {
		err = rg.cfg.validate(name)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rm, err := rg.acquire(name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	rm.serveAcquired(w, r)
}

// acquire counts a connection into the room named name, creating the room
// if needed. Under the registry's lock, so that an empty room is never
// removed while a client is on its way in.
func (rg *Registry) acquire(name string) (*Room, error) {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	rm, err := rg.openLocked(name)
	if err != nil {
		return nil, err
	}
	if !rm.acquire() {
		return nil, ErrRoomClosed // unreachable: openLocked returns an open room
	}
	return rm, nil
}

// Open returns the room named name, creating it if needed, and keeps it
// when empty (see WithKeepWhenEmpty): for a host that broadcasts into a room
// before anyone joins. It fails with ErrRoomClosed once the registry is
// shut down, ErrTooManyRooms, or a name the validator refuses.
func (rg *Registry) Open(name string) (*Room, error) {
	if err := rg.cfg.validate(name); err != nil {
		return nil, err
	}
	rg.mu.Lock()
	defer rg.mu.Unlock()
	rm, err := rg.openLocked(name)
	if err != nil {
		return nil, err
	}
	rm.mu.Lock()
	rm.keep = true
	rm.mu.Unlock()
	return rm, nil
}

// openLocked returns the open room named name, creating it if there is none
// or if the one there was shut down. rg.mu is held.
func (rg *Registry) openLocked(name string) (*Room, error) {
	if rg.closed {
		return nil, ErrRoomClosed
	}
	if rm := rg.rooms[name]; rm != nil && !rm.isClosed() {
		return rm, nil
	}
	if rg.cfg.maxRooms > 0 && len(rg.rooms) >= rg.cfg.maxRooms {
		if _, replacing := rg.rooms[name]; !replacing {
			return nil, ErrTooManyRooms
		}
	}
	name = strings.Clone(name) // kept as long as the room: not a substring of a request
	var opts []Option
	if rg.cfg.roomOptions != nil {
		opts = rg.cfg.roomOptions(name)
	}
	// Clip: appending must not write into an array of the host's, which
	// fn may return for every room.
	rm := New(append(slices.Clip(opts), WithName(name))...)
	rm.onEmpty = rg.roomEmpty
	rg.rooms[name] = rm
	return rm, nil
}

// roomEmpty removes rm once its last connection is gone, unless it is kept.
func (rg *Registry) roomEmpty(rm *Room) {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if rg.rooms[rm.Name()] != rm {
		return
	}
	if rm.retire() {
		delete(rg.rooms, rm.Name())
	}
}

// Room returns the open room named name, if there is one.
func (rg *Registry) Room(name string) (*Room, bool) {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	rm := rg.rooms[name]
	if rm == nil || rm.isClosed() {
		return nil, false
	}
	return rm, true
}

// RoomInfo describes a room of a Registry.
type RoomInfo struct {
	Name    string `json:"name"`
	Members int    `json:"members"` // connections that have joined
}

// Rooms lists the open rooms, by name.
func (rg *Registry) Rooms() []RoomInfo {
	rg.mu.Lock()
	rooms := make([]*Room, 0, len(rg.rooms))
	for _, rm := range rg.rooms {
		rooms = append(rooms, rm)
	}
	rg.mu.Unlock()
	infos := make([]RoomInfo, 0, len(rooms))
	for _, rm := range rooms {
		if !rm.isClosed() {
			infos = append(infos, RoomInfo{Name: rm.Name(), Members: rm.Len()})
		}
	}
	slices.SortFunc(infos, func(a, b RoomInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos
}

// Broadcast sends msg to every member of the room named name, as
// Room.Broadcast does, and returns the ID it got. It returns
// ErrNoSuchRoom if there is no such room.
func (rg *Registry) Broadcast(ctx context.Context, name string, msg Message) (uint64, error) {
	rm, ok := rg.Room(name)
	if !ok {
		return 0, ErrNoSuchRoom
	}
	return rm.Broadcast(ctx, msg)
}

// Shutdown shuts every room down as Room.Shutdown does, concurrently, and
// refuses new connections with HTTP 503. It returns once every room has
// finished or ctx has ended, with the rooms' errors joined.
func (rg *Registry) Shutdown(ctx context.Context) error {
	return rg.closeAll(func(rm *Room) error { return rm.Shutdown(ctx) })
}

// Close closes every room at once, as Room.Close does, and waits for them.
func (rg *Registry) Close() error {
	return rg.closeAll((*Room).Close)
}

func (rg *Registry) closeAll(closeRoom func(*Room) error) error {
	rg.mu.Lock()
	rg.closed = true
	rooms := make([]*Room, 0, len(rg.rooms))
	for _, rm := range rg.rooms {
		rooms = append(rooms, rm)
	}
	rg.mu.Unlock()

	errs := make([]error, len(rooms))
	var wg sync.WaitGroup
	for i, rm := range rooms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := closeRoom(rm); err != nil {
				errs[i] = fmt.Errorf("room %q: %w", rm.Name(), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
