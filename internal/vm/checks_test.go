package vm

import (
	"strings"
	"testing"

	"github.com/modload/modload/internal/vm/guest"
)

// checkSubtests runs a subtest per check of a KindChecks boot, in order: it fails when the
// check did not run or its script exited non-zero (with its output), logs the output of a
// passing one under -v, and hands the check's traced calls and result to assert (nil: none).
func checkSubtests(t *testing.T, res *Result, checks []guest.Check, assert func(t *testing.T, name string, calls []guest.Call, r guest.CheckResult)) {
	t.Helper()
	results := map[string]guest.CheckResult{}
	for _, r := range res.Checks {
		results[r.Name] = r
	}
	byCheck := callsByCheck(res)
	for _, c := range checks {
		t.Run(c.Name, func(t *testing.T) {
			r, ok := results[c.Name]
			if !ok {
				t.Fatalf("check %s did not run", c.Name)
			}
			if r.Exit != 0 {
				t.Errorf("exit %d:\n%s", r.Exit, r.Output)
			} else if testing.Verbose() && strings.TrimSpace(r.Output) != "" {
				t.Logf("output (%.1f s):\n%s", r.Seconds, r.Output)
			}
			if assert != nil {
				assert(t, c.Name, byCheck[c.Name], r)
			}
		})
	}
}

// callsByCheck groups a boot's traced calls by the check that made them.
func callsByCheck(res *Result) map[string][]guest.Call {
	byCheck := map[string][]guest.Call{}
	for _, c := range res.Calls {
		byCheck[c.Check] = append(byCheck[c.Check], c)
	}
	return byCheck
}
