package chatapp

import "testing"

func TestDisplayAddr(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"[::]:8000", "localhost:8000"},
		{"0.0.0.0:8000", "localhost:8000"},
		{"127.0.0.1:8000", "127.0.0.1:8000"},
		{"nonsense", "nonsense"},
	} {
		if got := DisplayAddr(fakeAddr(tt.in)); got != tt.want {
			t.Errorf("DisplayAddr(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }
