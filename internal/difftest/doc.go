// Package difftest holds the differential-test helpers that compare modload's modprobe with
// kmod's on a real module tree: the tree and the kmod binary (found through the environment,
// tests skip with a reason without them), alias patterns instantiated into concrete strings,
// and kmod's answers computed in batches and cached per tree.
//
// Batching: one kmod process answers thousands of queries: "modprobe -a MODE q1 SEP q2 SEP ..."
// where SEP is a name with an install command in the test configuration, so that its output
// ("install /bin/true " under -D, "modload_sep" under -R) splits the output per query. modload's
// modprobe runs the same argument vector in process, so whole outputs are compared byte for
// byte, stdout, stderr and exit code.
package difftest
