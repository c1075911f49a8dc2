// Package lineread reads lines of bounded length: a longer line is reported and skipped, not a
// reason to stop reading (bufio.Scanner stops at its first overlong token, "token too long").
package lineread

import (
	"bufio"
	"errors"
)

// Next returns the next line of br without its newline, in a buffer reused by the next call.
// A line longer than max bytes is read past and returned as long, without its content. At the
// end of input err is io.EOF, returned with the last line (empty when the input ended with a
// newline); any other error is the reader's.
func Next(br *bufio.Reader, max int, buf []byte) (line []byte, long bool, err error) {
	line = buf[:0]
	for {
		frag, err := br.ReadSlice('\n')
		if !long {
			if len(line)+len(frag) > max+1 || (len(line)+len(frag) == max+1 && frag[len(frag)-1] != '\n') {
				long, line = true, buf[:0]
			} else {
				line = append(line, frag...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		return line, long, err
	}
}
