package vm

import (
	"errors"
	"io"
	"testing"
)

func TestRetryCrash(t *testing.T) {
	crash := &crashError{err: errors.New("signal: segmentation fault")}
	other := &ResultError{Err: errors.New("no result line")}
	tests := []struct {
		name     string
		boots    []error // one per attempt; nil means the boot gave a result
		calls    int
		attempts int
		err      error
	}{
		{name: "first boot", boots: []error{nil}, calls: 1, attempts: 1},
		{name: "qemu crash, then a result", boots: []error{crash, nil}, calls: 2, attempts: 2},
		{name: "qemu crashes twice", boots: []error{crash, crash}, calls: 2, err: crash},
		{name: "guest failure is not retried", boots: []error{other, nil}, calls: 1, err: other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			res, err := retryCrash(io.Discard, func() (*Result, error) {
				e := tt.boots[calls]
				calls++
				if e != nil {
					return nil, e
				}
				return &Result{}, nil
			})
			if calls != tt.calls {
				t.Errorf("boots run: %d, want %d", calls, tt.calls)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			if tt.err == nil && (res == nil || res.Attempts != tt.attempts) {
				t.Errorf("result %+v, want Attempts %d", res, tt.attempts)
			}
		})
	}
}
