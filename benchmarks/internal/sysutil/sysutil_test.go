package sysutil

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSkmem(t *testing.T) {
	out := "1000   0      127.0.0.2:37813 127.0.0.1:44397\n\t skmem:(r1832,rb131072,t0,tb3939840,f2264,w0,o0,bl0,d0)\n" +
		"0      0      127.0.0.1:44397 127.0.0.2:37814\n\t skmem:(r0,rb131072,t10,tb3939840,f0,w4096,o0,bl0,d0)\n"
	got, err := parseSkmem(out)
	if err != nil {
		t.Fatal(err)
	}
	want := SockMem{Sockets: 2, Rmem: 1832, Wmem: 4096, Fwd: 2264, Queued: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseSkmem (-want +got):\n%s", diff)
	}
	if got.Charged() != 1832+4096+2264 {
		t.Errorf("Charged() = %d", got.Charged())
	}
	if _, err := parseSkmem("skmem:(r1,"); err == nil {
		t.Error("want an error for an unterminated skmem")
	}
}

func TestReadSockstatAndSlab(t *testing.T) {
	st, err := ReadSockstat()
	if err != nil {
		t.Fatal(err)
	}
	if st.SocketsUsed <= 0 {
		t.Errorf("sockets used %d", st.SocketsUsed)
	}
	if kib, err := SlabKiB(); err != nil || kib <= 0 {
		t.Errorf("SlabKiB() = %d, %v", kib, err)
	}
}

func TestParseSlabinfo(t *testing.T) {
	data := "slabinfo - version: 2.1\n" +
		"# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n" +
		"TCP                   28     28   2368   13    8 : tunables    0    0    0 : slabdata      2      2      0\n" +
		"filp                 100    128    256   16    1 : tunables    0    0    0 : slabdata      8      8      0\n"
	got, err := parseSlabinfo(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{"TCP": 28 * 2368, "filp": 128 * 256}, got); diff != "" {
		t.Errorf("parseSlabinfo (-want +got):\n%s", diff)
	}
}
