// Package fnmatch matches shell-style glob patterns with the semantics of
// glibc's fnmatch(3) called with flags 0 in the C locale, which is how kmod
// matches module aliases (libkmod's index_searchwild and config aliases).
//
// Contract:
//   - '*' matches any sequence of bytes, including '/' and a leading '.';
//     '?' matches any single byte.
//   - '[...]' is a bracket expression: ranges ("a-z", by byte value), negation
//     with '!' or '^', ']' literal when first, POSIX classes ("[:alpha:]",
//     ASCII only), equivalence classes and collating symbols of a single
//     byte ("[=a=]", "[.-.]"), and backslash escapes inside the brackets.
//   - A backslash outside brackets makes the next byte literal; a trailing
//     backslash never matches.
//   - A '[' with no closing ']' matches a literal '['.
//   - Ill-formed constructs that glibc rejects (an unknown class name such
//     as "[[:foo:]]", a multi-byte collating symbol) make the whole match
//     fail, as fnmatch returns FNM_NOMATCH for them.
//   - Matching is byte-wise; pattern and name end at their first NUL byte,
//     as C strings do.
//
// Match never panics and never reports an error: like fnmatch with flags 0,
// every pattern is accepted. Go's path.Match differs (it treats '/' specially
// and returns ErrBadPattern), which is why this package exists.
package fnmatch
