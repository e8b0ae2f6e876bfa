package sqlitestore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed014c2c51/chatroom"
	"github.com/seed014c2c51/chatroom/sqlitestore"
)

// The crash helper is this test binary run again with these variables set:
// it broadcasts, from helperWriters goroutines, into a room whose history
// is Durable in the database at crashDB, and prints "acked <text>" once
// each Broadcast has returned, until it is killed (or helperLimit).
const (
	crashDB       = "SQLITESTORE_CRASH_DB"
	crashRound    = "SQLITESTORE_CRASH_ROUND"
	helperWriters = 4
	helperLimit   = 20000 // frames per writer: a bound, never reached in time
	helperTime    = 30 * time.Second
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashDB); path != "" {
		crashHelper(path, os.Getenv(crashRound))
		return
	}
	if path := os.Getenv(crashServe); path != "" {
		crashServer(path)
		return
	}
	os.Exit(m.Run())
}

func crashHelper(path, round string) {
	ctx, cancel := context.WithTimeout(context.Background(), helperTime)
	defer cancel()
	rm, db := openCrashRoom(ctx, path)
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range helperWriters {
		wg.Go(func() {
			for i := range helperLimit {
				text := fmt.Sprintf("r%s-w%d-%d", round, w, i)
				if _, err := rm.Broadcast(ctx, chatroom.Message{Text: text}); err != nil {
					return
				}
				out.Lock()
				fmt.Println("acked", text)
				out.Unlock()
			}
		})
	}
	wg.Wait()
	_ = rm.Close()
	_ = db.Close()
}

// openCrashRoom opens, for a helper, the database at path and the room
// "lobby" on it, with the envelope and a Durable history; it exits on
// failure.
func openCrashRoom(ctx context.Context, path string) (*chatroom.Room, *sqlitestore.DB) {
	db, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	st, err := db.Room(ctx, "lobby", sqlitestore.Retention{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	return chatroom.New(chatroom.WithName("lobby"), chatroom.WithEnvelope(), chatroom.WithHistory(chatroom.History{Store: st, Durable: true})), db
}

// kill -9 in the middle of a stream of Durable broadcasts, twice: every
// frame acknowledged is in the database, and none is there twice.
func TestCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	acked := map[string]bool{}
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashDB+"="+path, fmt.Sprintf("%s=%d", crashRound, round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n := 0
		for n < 300 && sc.Scan() {
			line := sc.Text()
			text, ok := strings.CutPrefix(line, "acked ")
			if !ok {
				t.Fatalf("helper: %s", line)
			}
			acked[text] = true
			n++
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		for sc.Scan() { // what it acknowledged before it died
			if text, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
				acked[text] = true
			}
		}
		_ = cmd.Wait()
		if n < 300 {
			t.Fatalf("round %d: the helper acknowledged %d frames, then stopped", round, n)
		}
		checkStored(t, path, acked)
	}
}

// checkStored opens the database and checks that it holds every frame in
// acked, none twice.
func checkStored(t *testing.T, path string, acked map[string]bool) {
	t.Helper()
	stored, _ := readStored(context.Background(), t, path)
	missing := 0
	for text := range acked {
		if _, ok := stored[text]; !ok {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged frames are not stored", missing, len(acked))
	}
	t.Logf("%d frames stored, %d acknowledged", len(stored), len(acked))
}
