package stats

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// maxDuplicatesPrinted mirrors MAX_FAILED_MOD_PRINT in kernel/module/stats.c: the kernel
// stops at the 112th entry without printing it.
const maxDuplicatesPrinted = 112 - 1

// WriteText prints s as the kernel prints /sys/kernel/debug/modules/stats (same labels,
// same "%25s\t%u\n" lines, same conditional averages, duplicates newest first), followed
// by modload's own counters in the same format.
func WriteText(w io.Writer, s Snapshot) error {
	bw := bufio.NewWriter(w)
	line := func(label string, v uint64) { fmt.Fprintf(bw, "%25s\t%d\n", label, v) }
	line("Mods ever loaded", s.ModsLoaded)
	line("Mods failed on kread", s.FailedKreads)
	line("Mods failed on decompress", s.FailedDecompress)
	line("Mods failed on becoming", s.FailedBecoming)
	line("Mods failed on load", s.FailedLoad)
	line("Total module size", s.TotalModSize)
	line("Total mod text size", s.TotalTextSize)
	line("Failed kread bytes", s.KreadBytes)
	line("Failed decompress bytes", s.DecompressBytes)
	line("Failed becoming bytes", s.BecomingBytes)
	line("Failed kmod bytes", s.LoadBytes)
	line("Virtual mem wasted bytes", s.Wasted())
	if s.ModsLoaded != 0 && s.TotalModSize != 0 {
		line("Average mod size", divRoundUp(s.TotalModSize, s.ModsLoaded))
	}
	if s.ModsLoaded != 0 && s.TotalTextSize != 0 {
		line("Average mod text size", divRoundUp(s.TotalTextSize, s.ModsLoaded))
	}
	if s.FailedKreads != 0 && s.KreadBytes != 0 {
		line("Avg fail kread bytes", divRoundUp(s.KreadBytes, s.FailedKreads))
	}
	if s.FailedBecoming != 0 && s.BecomingBytes != 0 {
		line("Avg fail becoming bytes", divRoundUp(s.BecomingBytes, s.FailedBecoming))
	}
	if s.FailedDecompress != 0 && s.DecompressBytes != 0 {
		line("Avg fail decomp bytes", divRoundUp(s.DecompressBytes, s.FailedDecompress))
	}
	if s.FailedLoad != 0 && s.LoadBytes != 0 {
		line("Average fail load bytes", divRoundUp(s.LoadBytes, s.FailedLoad))
	}
	if len(s.Duplicates) > 0 {
		fmt.Fprintf(bw, "Duplicate failed modules:\n")
		fmt.Fprintf(bw, "%25s\t%15s\t%25s\n", "Module-name", "How-many-times", "Reason")
		for i, d := range slices.Backward(s.Duplicates) {
			if len(s.Duplicates)-i > maxDuplicatesPrinted {
				break
			}
			fmt.Fprintf(bw, "%25s\t%15d\t%25s\n", d.Module, d.Count, d.Reason())
		}
	}
	line("Requests", s.Requests)
	line("Served already live", s.AlreadyLive)
	line("Waited for coming", s.WaitedComing)
	line("Coalesced in process", s.CoalescedLocal)
	line("Coalesced across procs", s.CoalescedProcess)
	line("Remembered failures", s.RememberedFailures)
	line("Busy refusals", s.BusyRefusals)
	line("Kernel calls", s.KernelCalls)
	line("Kernel call failures", s.KernelFailures)
	line("Kernel read bytes", s.KernelReadBytes)
	line("Virtual mem saved bytes", s.SavedBytes)
	return bw.Flush()
}

func divRoundUp(n, d uint64) uint64 { return (n + d - 1) / d }

// jsonSnapshot is the JSON form: the snapshot plus the derived total, so tools need not
// know the kernel's formula.
type jsonSnapshot struct {
	Snapshot
	Wasted uint64 `json:"virtual_mem_wasted_bytes"`
}

// WriteJSON prints s as one indented JSON object (modload stats --json).
func WriteJSON(w io.Writer, s Snapshot) error {
	if s.Duplicates == nil {
		s.Duplicates = []Duplicate{}
	}
	b, err := json.MarshalIndent(jsonSnapshot{Snapshot: s, Wasted: s.Wasted()}, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Formats accepted by Write.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// ErrUnknownFormat is returned by Write for a format it does not know.
var ErrUnknownFormat = errors.New("unknown stats format")

// Write renders s in one of the formats (for modload stats and --json).
func Write(w io.Writer, s Snapshot, format string) error {
	switch format {
	case FormatText, "":
		return WriteText(w, s)
	case FormatJSON:
		return WriteJSON(w, s)
	}
	return fmt.Errorf("%w %q", ErrUnknownFormat, format)
}
