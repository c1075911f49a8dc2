package modload

import (
	"bytes"
	"strings"
	"testing"
)

func TestUeventModalias(t *testing.T) {
	for in, want := range map[string]string{
		"DRIVER=e1000\nMODALIAS=pci:v00008086d0000100Esv*\n": "pci:v00008086d0000100Esv*",
		"MODALIAS=\nMODALIAS=acpi:PNP0A03:\n":                "acpi:PNP0A03:",
		"DEVTYPE=usb_interface\n":                            "",
		"MODALIAS=  cpu:type:x86 \r\n":                       "cpu:type:x86",
		"":                                                   "",
	} {
		if got := ueventModalias([]byte(in)); got != want {
			t.Errorf("ueventModalias(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzUeventModalias: the value is one trimmed line's MODALIAS= value, found in the input.
func FuzzUeventModalias(f *testing.F) {
	f.Add([]byte("DRIVER=e1000\nMODALIAS=pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\n"))
	f.Add([]byte("MODALIAS=\nMODALIAS= x \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a := ueventModalias(b)
		if a == "" {
			return
		}
		if strings.ContainsAny(a, "\n") || strings.TrimSpace(a) != a {
			t.Fatalf("%q: value %q spans lines or is untrimmed", b, a)
		}
		if !bytes.Contains(b, []byte("MODALIAS=")) || !bytes.Contains(b, []byte(a)) {
			t.Fatalf("%q: value %q is not in the input's MODALIAS= line", b, a)
		}
	})
}
