package stats

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

func TestRecordClassifies(t *testing.T) {
	wrapped := fmt.Errorf("finit_module: %w", syscall.ENOENT)
	tests := []struct {
		name   string
		events []Event
		want   Snapshot
	}{
		{
			name:   "success",
			events: []Event{{Kind: KernelCall, Module: "a", Bytes: 100}},
			want:   Snapshot{KernelCalls: 1, KernelReadBytes: 100, ModsLoaded: 1, TotalModSize: 100},
		},
		{
			name:   "duplicate live and coming",
			events: []Event{{Kind: KernelCall, Module: "a", Bytes: 10, Err: syscall.EEXIST}, {Kind: KernelCall, Module: "b", Bytes: 5, Err: syscall.EBUSY}, {Kind: KernelCall, Module: "a", Bytes: 10, Err: syscall.EEXIST}},
			want: Snapshot{KernelCalls: 3, KernelFailures: 3, KernelReadBytes: 25, FailedBecoming: 3, BecomingBytes: 25,
				Duplicates: []Duplicate{{Module: "a", Count: 2, Becoming: true}, {Module: "b", Count: 1, Becoming: true}}},
		},
		{
			name:   "bad format is becoming, not duplicate",
			events: []Event{{Kind: KernelCall, Module: "a", Bytes: 7, Err: syscall.ENOEXEC}, {Kind: KernelCall, Module: "k", Bytes: 3, Err: syscall.EKEYREJECTED}},
			want:   Snapshot{KernelCalls: 2, KernelFailures: 2, KernelReadBytes: 10, FailedBecoming: 2, BecomingBytes: 10},
		},
		{
			name:   "unknown symbol wrapped is load, twice the bytes",
			events: []Event{{Kind: KernelCall, Module: "a", Bytes: 7, Err: wrapped}},
			want:   Snapshot{KernelCalls: 1, KernelFailures: 1, KernelReadBytes: 7, FailedLoad: 1, LoadBytes: 14},
		},
		{
			name:   "kread",
			events: []Event{{Kind: KernelCall, Module: "a", Bytes: 7, Err: syscall.ENOMEM}},
			want:   Snapshot{KernelCalls: 1, KernelFailures: 1, KernelReadBytes: 7, FailedKreads: 1},
		},
		{
			name:   "init failure is not a kernel stat",
			events: []Event{{Kind: KernelCall, Module: "acpi_cpufreq", Bytes: 9, Err: syscall.ENODEV}},
			want:   Snapshot{KernelCalls: 1, KernelFailures: 1, KernelReadBytes: 9},
		},
		{
			name: "served without the kernel",
			events: []Event{
				{Kind: Request, Module: "a"}, {Kind: AlreadyLive, Module: "a", Bytes: 1},
				{Kind: WaitedComing, Bytes: 2}, {Kind: CoalescedLocal, Bytes: 4}, {Kind: CoalescedProcess, Bytes: 8},
				{Kind: RememberedFailure, Bytes: 16, Err: syscall.ENODEV}, {Kind: Busy, Bytes: 32, Err: syscall.EBUSY},
				{Kind: AlreadyLive, Bytes: -5}, {Kind: Kind(99), Bytes: 1000},
			},
			want: Snapshot{Requests: 1, AlreadyLive: 2, WaitedComing: 1, CoalescedLocal: 1, CoalescedProcess: 1,
				RememberedFailures: 1, BusyRefusals: 1, SavedBytes: 62}, // AlreadyLive spares nothing over kmod
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Counter
			for _, e := range tt.events {
				c.Record(e)
			}
			if diff := cmp.Diff(tt.want, c.Snapshot()); diff != "" {
				t.Errorf("Snapshot() (-want +got):\n%s", diff)
			}
		})
	}
}

// sample is a snapshot with every counter and both averages printed.
func sample() Snapshot {
	var c Counter
	for i := range 3 {
		c.Record(Event{Kind: Request, Module: "m"})
		c.Record(Event{Kind: KernelCall, Module: fmt.Sprint("mod", i), Bytes: 1000 + int64(i)})
	}
	c.Record(Event{Kind: KernelCall, Module: "snd", Bytes: 333, Err: syscall.EEXIST})
	c.Record(Event{Kind: KernelCall, Module: "acpi_cpufreq", Bytes: 500, Err: syscall.EBUSY})
	c.Record(Event{Kind: KernelCall, Module: "snd", Bytes: 333, Err: syscall.EEXIST})
	c.Record(Event{Kind: KernelCall, Module: "x", Bytes: 11, Err: syscall.EINVAL})
	c.Record(Event{Kind: KernelCall, Module: "y", Bytes: 0, Err: syscall.ENOMEM})
	c.Record(Event{Kind: AlreadyLive, Bytes: 4096})
	c.Record(Event{Kind: CoalescedLocal, Bytes: 8192})
	c.Record(Event{Kind: CoalescedProcess, Bytes: 100})
	c.Record(Event{Kind: WaitedComing, Bytes: 1})
	c.Record(Event{Kind: RememberedFailure, Bytes: 2})
	c.Record(Event{Kind: Busy, Bytes: 3})
	s := c.Snapshot()
	s.TotalTextSize = 301 // not observable by modload; set to exercise the average line
	return s
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", p, diff)
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		snap Snapshot
	}{{"sample", sample()}, {"zero", Snapshot{}}} {
		t.Run(tc.name, func(t *testing.T) {
			var text, js bytes.Buffer
			if err := WriteText(&text, tc.snap); err != nil {
				t.Fatal(err)
			}
			if err := WriteJSON(&js, tc.snap); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".txt", text.Bytes())
			golden(t, tc.name+".json", js.Bytes())
		})
	}
}

// TestTextKernelLines checks the kernel's own lines by construction, independent of the
// golden file: label right-aligned in 25 columns, a tab, the value.
func TestTextKernelLines(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sample()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"         Mods ever loaded\t3\n",
		"  Mods failed on becoming\t3\n",
		"      Mods failed on load\t1\n",
		"     Mods failed on kread\t1\n",
		"        Total module size\t3003\n",
		"Virtual mem wasted bytes\t1188\n", // 333+500+333 + 2*11
		"         Average mod size\t1001\n",
		"    Average mod text size\t101\n", // DIV_ROUND_UP(301, 3)
		"  Avg fail becoming bytes\t389\n", // DIV_ROUND_UP(1166, 3)
		"  Average fail load bytes\t22\n",
		"Duplicate failed modules:\n              Module-name\t How-many-times\t                   Reason\n",
		"             acpi_cpufreq\t              1\t                 Becoming\n                      snd\t              2\t                 Becoming\n",
		"  Virtual mem saved bytes\t8298\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "Avg fail kread bytes") {
		t.Errorf("kread average printed with zero kread bytes")
	}
}

func TestTextDuplicatesCapped(t *testing.T) {
	var s Snapshot
	for i := range 120 {
		s.Duplicates = append(s.Duplicates, Duplicate{Module: fmt.Sprint("m", i), Count: 1, Load: i%2 == 0, Becoming: i%3 == 0})
	}
	var b bytes.Buffer
	if err := WriteText(&b, s); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	head, _, _ := strings.Cut(out, fmt.Sprintf("%25s\t", "Requests"))
	_, table, _ := strings.Cut(head, "Reason\n")
	rows := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(rows) != 111 {
		t.Fatalf("printed %d duplicates, want 111 (MAX_FAILED_MOD_PRINT-1)", len(rows))
	}
	if !strings.HasPrefix(rows[0], fmt.Sprintf("%25s\t", "m119")) || !strings.HasPrefix(rows[110], fmt.Sprintf("%25s\t", "m9")) {
		t.Errorf("first/last rows %q / %q, want newest first m119 .. m9", rows[0], rows[110])
	}
	if want := fmt.Sprintf("%25s\t%15d\t%25s", "m119", 1, "Bug-on-stats"); rows[0] != want {
		t.Errorf("row m119 = %q, want %q", rows[0], want)
	}
	if want := fmt.Sprintf("%25s\t%15d\t%25s", "m114", 1, "Becoming & Load"); rows[5] != want {
		t.Errorf("row m114 = %q, want %q", rows[5], want)
	}
	for _, tc := range []struct {
		d    Duplicate
		want string
	}{{Duplicate{Becoming: true, Load: true}, "Becoming & Load"}, {Duplicate{Load: true}, "Load"}, {Duplicate{}, "Bug-on-stats"}} {
		if got := tc.d.Reason(); got != tc.want {
			t.Errorf("Reason(%+v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestConcurrentRecord(t *testing.T) {
	const workers, each = 16, 500
	var c Counter
	start := make(chan struct{})
	var wg sync.WaitGroup
	var taken []Snapshot
	var mu sync.Mutex
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				c.Record(Event{Kind: Request})
				c.Record(Event{Kind: KernelCall, Module: fmt.Sprint("m", w%4), Bytes: 1, Err: syscall.EEXIST})
				if i%100 == 0 {
					s := c.Take()
					mu.Lock()
					taken = append(taken, s)
					mu.Unlock()
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	total := c.Take()
	for _, s := range taken {
		total = total.Add(s)
	}
	if total.Requests != workers*each || total.KernelCalls != workers*each || total.BecomingBytes != workers*each {
		t.Errorf("total = %+v, want %d each", total, workers*each)
	}
	var dups uint64
	for _, d := range total.Duplicates {
		dups += d.Count
	}
	if len(total.Duplicates) != 4 || dups != workers*each {
		t.Errorf("duplicates = %+v, want 4 names summing to %d", total.Duplicates, workers*each)
	}
}
