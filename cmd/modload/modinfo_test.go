package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/difftest"
)

// TestModinfoByAliasAgainstKmod checks the wiring of modinfo to package resolve: real device
// modaliases, symbols and names give kmod's modinfo output byte for byte.
func TestModinfoByAliasAgainstKmod(t *testing.T) {
	difftest.ForEachPair(t, func(t *testing.T, p difftest.Pair) { modinfoByAlias(t, p) })
}

func modinfoByAlias(t *testing.T, p difftest.Pair) {
	tr := p.Tree
	kmod, err := exec.LookPath("modinfo")
	if err != nil {
		t.Skip("kmod's modinfo not installed (apt-get install kmod)")
	}
	f, err := os.Open("../../internal/difftest/testdata/modaliases.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	queries := []string{"ext4", "crypto-aes", "symbol:jbd2_journal_start", "aes", "crc32c", "no_such_module"}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			queries = append(queries, l)
		}
	}
	for _, q := range queries {
		args := []string{"-b", tr.Root, "-k", tr.Version, q}
		want, err := difftest.Run(p.Command(kmod, args...))
		if err != nil {
			t.Fatal(err)
		}
		var got, gotErr bytes.Buffer
		code := modinfoMain(&cli.Env{Stdout: &got, Stderr: &gotErr, Environ: p.Environ(nil)}, append([]string{"modinfo"}, args...))
		if code != want.Code || got.String() != want.Stdout {
			t.Errorf("modinfo %q: exit %d, want %d\n got: %q\nwant: %q\nstderr: %q / %q", q, code, want.Code, got.String(), want.Stdout, gotErr.String(), want.Stderr)
		}
	}
}
