package vm

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cavaliergopher/cpio"
	"github.com/google/go-cmp/cmp"
)

func TestParseConsole(t *testing.T) {
	in := "SeaBIOS\r\n[    1.0] something\r\n\x1b[2J\r\n" +
		`MODLOAD-RESULT {"scenario":"kmod-storm","cpus":4,"finit_calls":194,"duplicates":106,"modules":["e1000"]}` + "\r\n" +
		"[   14.6] reboot: Power down\r\n"
	res, err := parseConsole(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if res.Scenario != "kmod-storm" || res.CPUs != 4 || res.FinitCalls != 194 || res.Duplicates != 106 ||
		len(res.Modules) != 1 {
		t.Errorf("result = %+v", res)
	}
	if _, err := parseConsole(strings.NewReader("Kernel panic - not syncing\r\n")); !errors.Is(err, ErrNoResult) {
		t.Errorf("no marker: err = %v, want ErrNoResult", err)
	}
	if _, err := parseConsole(strings.NewReader("MODLOAD-RESULT {\"cpus\":\r\n")); err == nil ||
		!strings.Contains(err.Error(), "result line") {
		t.Errorf("truncated result: err = %v", err)
	}
}

func FuzzParseConsole(f *testing.F) {
	f.Add("boot\r\nMODLOAD-RESULT {\"cpus\":2,\"calls\":[{\"pid\":1,\"ret\":-17}]}\r\nbye\r\n")
	f.Add("no result\n")
	f.Fuzz(func(t *testing.T, s string) {
		res, err := parseConsole(strings.NewReader(s))
		if (err == nil) == (res == nil) {
			t.Fatalf("err %v with result %v", err, res)
		}
		if err != nil && !strings.Contains(s, "MODLOAD-RESULT ") && !errors.Is(err, ErrNoResult) {
			t.Fatalf("no marker but err %v", err)
		}
	})
}

const lddKmod = `	linux-vdso.so.1 (0x00007f825968b000)
	libzstd.so.1 => /lib/x86_64-linux-gnu/libzstd.so.1 (0x00007f8259592000)
	liblzma.so.5 => /lib/x86_64-linux-gnu/liblzma.so.5 (0x00007f8259563000)
	libcrypto.so.3 => /lib/x86_64-linux-gnu/libcrypto.so.3 (0x00007f8259000000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f8258e1e000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f825968d000)
`

func TestParseLdd(t *testing.T) {
	got, err := parseLdd(strings.NewReader(lddKmod))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/lib/x86_64-linux-gnu/libzstd.so.1", "/lib/x86_64-linux-gnu/liblzma.so.5",
		"/lib/x86_64-linux-gnu/libcrypto.so.3", "/lib/x86_64-linux-gnu/libc.so.6",
		"/lib64/ld-linux-x86-64.so.2",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if _, err := parseLdd(strings.NewReader("\tlibfoo.so.1 => not found\n")); err == nil {
		t.Error("missing library: no error")
	}
	if got, err := parseLdd(strings.NewReader("\tstatically linked\n")); err != nil || len(got) != 0 {
		t.Errorf("static binary: %v, %v", got, err)
	}
}

func FuzzParseLdd(f *testing.F) {
	f.Add(lddKmod)
	f.Fuzz(func(t *testing.T, s string) {
		libs, err := parseLdd(strings.NewReader(s))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, l := range libs {
			if !strings.HasPrefix(l, "/") || seen[l] {
				t.Fatalf("bad library list %q", libs)
			}
			seen[l] = true
		}
	})
}

func TestParseNameList(t *testing.T) {
	got, err := parseNameList(strings.NewReader("# calibrated\ne1000\n\nvirtio_net\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"e1000", "virtio_net"}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if _, err := parseNameList(strings.NewReader("e1000\nkernel/x.ko\n")); err == nil ||
		!strings.Contains(err.Error(), "line 2") {
		t.Errorf("path in list: err = %v, want line 2", err)
	}
}

func FuzzParseNameList(f *testing.F) {
	f.Add("e1000\n# c\nvirtio_net\n")
	f.Fuzz(func(t *testing.T, s string) {
		names, err := parseNameList(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, n := range names {
			if n == "" || strings.ContainsAny(n, " \t/\n") || strings.HasPrefix(n, "#") {
				t.Fatalf("bad name %q", n)
			}
		}
	})
}

// TestInitramfsRoundTrip writes an archive and reads it back with the cpio reader.
func TestInitramfsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "kmod")
	if err := os.WriteFile(host, []byte("ELF..."), 0o755); err != nil {
		t.Fatal(err)
	}
	a := NewInitramfs()
	a.AddFile("/kmod/bin/kmod", host, 0o755)
	a.AddSymlink("kmod/sbin/modprobe", "../bin/kmod")
	a.AddBytes("scenario.json", []byte(`{"kind":"storm"}`), 0o644)
	a.AddDir("proc")
	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	r := cpio.NewReader(&buf)
	var got []string
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		s := h.Name + " " + h.FileInfo().Mode().String()
		if h.Linkname != "" {
			s += " -> " + h.Linkname
		}
		if len(b) > 0 {
			s += " " + string(b)
		}
		got = append(got, s)
	}
	want := []string{
		"kmod drwxr-xr-x",
		"kmod/bin drwxr-xr-x",
		"kmod/bin/kmod -rwxr-xr-x ELF...",
		"kmod/sbin drwxr-xr-x",
		"kmod/sbin/modprobe Lrwxrwxrwx -> ../bin/kmod",
		"proc drwxr-xr-x",
		`scenario.json -rw-r--r-- {"kind":"storm"}`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("archive (-want +got):\n%s", d)
	}
}

func TestQemuArgs(t *testing.T) {
	cfg := Config{SMP: 16}
	cfg.defaults()
	cfg.Tree.Vmlinuz = "/k/vmlinuz"
	args := strings.Join(qemuArgs(cfg, "/w/initrd", "/w/disk.img"), " ")
	for _, want := range []string{
		"-machine pc ", "-cpu max ", "-accel tcg,thread=single", "-smp 16", "-m 2048", "-kernel /k/vmlinuz", "-initrd /w/initrd",
		"file=/w/disk.img,if=virtio,format=raw", "-no-reboot", "panic=-1", "no_timer_check",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q: %s", want, args)
		}
	}
}
