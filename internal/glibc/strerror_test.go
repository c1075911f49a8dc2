package glibc

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

func TestStrerror(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, "Success"},
		{syscall.ENOENT, "No such file or directory"},
		{syscall.EAGAIN, "Resource temporarily unavailable"},
		{syscall.ENOKEY, "Required key not available"},
		{syscall.EOPNOTSUPP, "Operation not supported"},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, "Permission denied"},
		{fmt.Errorf("wrapped: %w", syscall.EEXIST), "File exists"},
		{errors.New("no errno"), "Input/output error"},
		{syscall.Errno(41), "Unknown error 41"},
		{syscall.Errno(4000), "Unknown error 4000"},
	} {
		if got := Strerror(tt.err); got != tt.want {
			t.Errorf("Strerror(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestErrno(t *testing.T) {
	if got := Errno(nil); got != 0 {
		t.Errorf("Errno(nil) = %d", got)
	}
	if got := Errno(errors.New("x")); got != syscall.EIO {
		t.Errorf("Errno(no errno) = %d, want EIO", got)
	}
	if got := Errno(fmt.Errorf("w: %w", syscall.EBUSY)); got != syscall.EBUSY {
		t.Errorf("Errno(wrapped EBUSY) = %d", got)
	}
}
