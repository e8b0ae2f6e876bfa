//go:build unix

package serverproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// ErrNoPostgres is returned by StartPostgres when neither PATH nor
// /usr/lib/postgresql/*/bin (Debian's layout) has initdb and postgres.
var ErrNoPostgres = errors.New("serverproc: no PostgreSQL server binaries (initdb, postgres)")

// Postgres is a PostgreSQL server of its own, in a data directory of its
// own, listening on a loopback port, with one superuser, postgres, that
// connects without a password.
type Postgres struct {
	*Process
	Port int
	Dir  string // the data directory
}

// URL returns the connection string of database on the server.
func (pg *Postgres) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.Port, database)
}

// Close kills the server, as its data is thrown away, and removes its
// directory.
func (pg *Postgres) Close() error {
	pg.Kill()
	return os.RemoveAll(pg.Dir)
}

// StartPostgres creates a database cluster in a new temporary directory
// and starts a server on it, on a free loopback port, with the server
// settings extra (name=value) besides. PostgreSQL refuses to run as root:
// as root, it runs initdb and the server as the user postgres (or nobody),
// which it gives the directory.
func StartPostgres(timeout time.Duration, extra ...string) (*Postgres, error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	cred, err := unprivileged()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "serverproc-postgres-")
	if err != nil {
		return nil, fmt.Errorf("serverproc: %w", err)
	}
	pg := &Postgres{Dir: dir}
	fail := func(err error) (*Postgres, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(fmt.Errorf("serverproc: %w", err))
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--no-locale")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("serverproc: initdb: %w; its output:\n%s", err, out))
	}
	p, port, err := StartOnFreePort(3, "database system is ready to accept connections", timeout, func(port int) *exec.Cmd {
		args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", dir, "-c", "listen_addresses=127.0.0.1"}
		for _, e := range extra {
			args = append(args, "-c", e)
		}
		cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		return cmd
	})
	if err != nil {
		return fail(err)
	}
	pg.Process, pg.Port = p, port
	return pg, nil
}

// postgresBin returns the directory of initdb and postgres: PATH's, or
// the newest of Debian's /usr/lib/postgresql/<version>/bin.
func postgresBin() (string, error) {
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(initdb), nil
		}
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(found, func(a, b string) int { return version(b) - version(a) })
	for _, initdb := range found {
		bin := filepath.Dir(initdb)
		if _, err := os.Stat(filepath.Join(bin, "postgres")); err == nil {
			return bin, nil
		}
	}
	return "", ErrNoPostgres
}

// version is the major version in a path /usr/lib/postgresql/<v>/bin/….
func version(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

// unprivileged returns the credential to run PostgreSQL with: nil unless
// this process is root, else the user postgres's, or nobody's.
func unprivileged() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var errs []error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			errs = append(errs, err)
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("serverproc: running as root, and no user to run PostgreSQL as: %w", errors.Join(errs...))
}
