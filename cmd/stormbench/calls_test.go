package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/modload/modload/internal/vm/guest"
)

// TestPrintCalls: times from the phase's start, and how long 0, 1 and 2 calls were in the
// kernel: a from 1 to 4 s, b from 2 to 3 s, c from 5 to 6 s.
func TestPrintCalls(t *testing.T) {
	res := guest.Result{Scenario: "modload-daemon", CPUs: 16, LoadPhase: 6 * time.Second, Uptime: 10, Calls: []guest.Call{
		{Comm: "modloadd", Module: "c", Start: 15, End: 16},
		{Comm: "modloadd", Module: "a", Start: 11, End: 14},
		{Comm: "modloadd", Module: "b", Start: 12, End: 13},
	}}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := printCalls(p, &out); err != nil {
		t.Fatal(err)
	}
	wantContains(t, out.String(),
		"a                        modloadd             1.00     4.00     3.00 0\n",
		"first call 1.00 s into the phase; calls' time in the kernel summed 5.00 s over 5.00 s; 0/1/2/3+ calls in the kernel: 1.00 / 3.00 / 1.00 / 0.00 s\n")
	if err := printCalls(filepath.Join(t.TempDir(), "none.json"), &out); err == nil {
		t.Error("no error for a missing file")
	}
}
