// Package difftest holds the differential-test helpers that compare modload's modprobe with
// kmod's on a real module tree: the tree and the kmod binary (found through the environment,
// tests skip with a reason without them, or fail under MODLOAD_TEST_REQUIRE_DEBIAN=1), alias patterns instantiated into concrete strings,
// and kmod's answers computed in batches and cached per tree.
//
// Two kmods: Debian 12's kmod 30 on the host (Kmod), and Debian 13's kmod 34 extracted under
// MODLOAD_KMOD34_ROOT, run through that root's own dynamic loader (Kmod34Argv). The Debian
// suites run per variant: kmod 30 on the 6.1 tree (MODLOAD_DEBIAN_ROOT/KVER, modload with
// MODLOAD_KMOD_COMPAT=30), kmod 34 on it, and kmod 34 on the 6.12 tree (MODLOAD_DEBIAN13_ROOT/
// KVER, Debian13Tree).
//
// Batching: one kmod process answers thousands of queries: "modprobe -a MODE q1 SEP q2 SEP ..."
// where SEP is a name with an install command in the test configuration, so that its output
// ("install /bin/true " under -D, "modload_sep" under -R) splits the output per query. modload's
// modprobe runs the same argument vector in process, so whole outputs are compared byte for
// byte, stdout, stderr and exit code.
//
// Oracles: the Debian suites run against three kmod/tree pairs: kmod 34 on Debian 13's 6.12
// tree, kmod 34 on Debian 12's 6.1 tree (modload in its default mode), and the host's kmod 30 on
// the 6.1 tree (modload under MODLOAD_KMOD_COMPAT=30). kmod 34 runs from MODLOAD_KMOD34_ROOT
// through its own dynamic loader (Kmod34Cmd, Kmod34Argv). Pair and ForEachPair select them for
// the suites outside this package; MODLOAD_ORACLES=name,... narrows the pairs for a quick run.
package difftest
