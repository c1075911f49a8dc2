package moddb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unsafe"

	"github.com/modload/modload/fnmatch"
)

// Binary trie format (libkmod-index.c): big-endian u32 magic, version and
// root offset, then nodes. A node offset carries flags in its high nibble.
const (
	indexMagic        = 0xB007F457
	indexVersionMajor = 2
	indexVersion      = indexVersionMajor<<16 | 1
	headerSize        = 12

	flagPrefix = 0x80000000
	flagValues = 0x40000000
	flagChilds = 0x20000000
	offMask    = 0x0FFFFFFF

	childMax = 128  // children are 7-bit characters
	maxDepth = 8192 // deeper than any key depmod can write
)

// index is one binary trie, held in memory (mapped or built from text).
type index struct {
	file string // for errors
	data []byte
	root uint32
}

// newIndex checks the header of data.
func newIndex(file string, data []byte) (*index, error) {
	if len(data) < headerSize {
		return nil, &FormatError{File: file, Off: 0, Msg: "file too short for the index header"}
	}
	if m := binary.BigEndian.Uint32(data); m != indexMagic {
		return nil, &FormatError{File: file, Off: 0, Msg: fmt.Sprintf("magic check fail: %x instead of %x", m, uint32(indexMagic))}
	}
	if v := binary.BigEndian.Uint32(data[4:]); v>>16 != indexVersionMajor {
		return nil, &FormatError{File: file, Off: 4, Msg: fmt.Sprintf("major version check fail: %d instead of %d", v>>16, indexVersionMajor)}
	}
	return &index{file: file, data: data, root: binary.BigEndian.Uint32(data[8:])}, nil
}

// node is a decoded trie node; its slices point into the index data.
type node struct {
	off      uint32 // masked file offset
	prefix   []byte
	first    int // first > last: no children
	last     int
	kids     []byte // 4 bytes per child, first..last
	nvals    int
	vals     []byte // the values area, after the count
	hasChild bool
	size     int // bytes the node occupies
}

func (ix *index) errAt(off int, msg string) error {
	return &FormatError{File: ix.file, Off: int64(off), Msg: msg}
}

// read decodes the node at the flagged offset off. ok is false when off
// names no node (offset 0).
func (ix *index) read(off uint32) (n node, ok bool, err error) {
	pos := int(off & offMask)
	if pos == 0 {
		return n, false, nil
	}
	d := ix.data
	if pos < headerSize || pos > len(d) {
		return n, false, ix.errAt(pos, "node offset out of range")
	}
	n.off = uint32(pos)
	n.first, n.last = childMax, 0
	if off&flagPrefix != 0 {
		end := indexByte(d, pos, 0)
		if end < 0 {
			return n, false, ix.errAt(pos, "unterminated node prefix")
		}
		n.prefix = d[pos:end]
		pos = end + 1
	}
	if off&flagChilds != 0 {
		if pos+2 > len(d) {
			return n, false, ix.errAt(pos, "truncated child range")
		}
		first, last := int(d[pos]), int(d[pos+1])
		if first >= childMax || last >= childMax {
			return n, false, ix.errAt(pos, "child character >= 128")
		}
		if first > last {
			return n, false, ix.errAt(pos, "child range first > last")
		}
		pos += 2
		cnt := last - first + 1
		if pos+4*cnt > len(d) {
			return n, false, ix.errAt(pos, "truncated child offsets")
		}
		n.first, n.last, n.hasChild = first, last, true
		n.kids = d[pos : pos+4*cnt]
		pos += 4 * cnt
	}
	if off&flagValues != 0 {
		if pos+4 > len(d) {
			return n, false, ix.errAt(pos, "truncated value count")
		}
		cnt := binary.BigEndian.Uint32(d[pos:])
		pos += 4
		start := pos
		// Every value needs at least 5 bytes (priority and NUL).
		if uint64(cnt)*5 > uint64(len(d)-pos) {
			return n, false, ix.errAt(pos-4, "value count exceeds file size")
		}
		for i := uint32(0); i < cnt; i++ {
			if pos+4 > len(d) {
				return n, false, ix.errAt(pos, "truncated value priority")
			}
			end := indexByte(d, pos+4, 0)
			if end < 0 {
				return n, false, ix.errAt(pos+4, "unterminated value")
			}
			pos = end + 1
		}
		n.nvals = int(cnt)
		n.vals = d[start:pos]
	}
	n.size = pos - int(n.off)
	return n, true, nil
}

func indexByte(d []byte, from int, c byte) int {
	for i := from; i < len(d); i++ {
		if d[i] == c {
			return i
		}
	}
	return -1
}

// child returns the flagged offset of the child for ch, or 0.
func (n *node) child(ch byte) uint32 {
	c := int(ch)
	if !n.hasChild || c < n.first || c > n.last {
		return 0
	}
	return binary.BigEndian.Uint32(n.kids[4*(c-n.first):])
}

// eachValue calls fn for every value of n in file order. The area was
// validated by read.
func (n *node) eachValue(fn func(prio uint32, v []byte)) {
	d := n.vals
	for i := 0; i < n.nvals; i++ {
		prio := binary.BigEndian.Uint32(d)
		end := 4
		for d[end] != 0 {
			end++
		}
		fn(prio, d[4:end])
		d = d[end+1:]
	}
}

// search is index_mm_search: the first value (in file order) of the node
// whose key equals key exactly.
func (ix *index) search(key string) (string, bool, error) {
	off := ix.root
	i := 0
	for {
		n, ok, err := ix.read(off)
		if err != nil || !ok {
			return "", false, err
		}
		for j, ch := range n.prefix {
			if i+j >= len(key) || key[i+j] != ch {
				return "", false, nil
			}
		}
		i += len(n.prefix)
		if i == len(key) {
			if n.nvals == 0 {
				return "", false, nil
			}
			var v string
			first := true
			n.eachValue(func(_ uint32, b []byte) {
				if first {
					v, first = string(b), false
				}
			})
			return v, true, nil
		}
		off = n.child(key[i])
		i++
	}
}

// value is one result of a wildcard search.
type value struct {
	prio uint32
	s    string
}

// addValue inserts v like libkmod's add_value: after every value of lower
// priority, before the values of equal or higher priority.
func addValue(out []value, v value) []value {
	i := 0
	for i < len(out) && out[i].prio < v.prio {
		i++
	}
	out = append(out, value{})
	copy(out[i+1:], out[i:])
	out[i] = v
	return out
}

// walker bounds a traversal: a valid trie visits each node once, so a walk
// that decodes more bytes than the file holds has offsets that loop or are
// shared (a corrupt file); it stops with a FormatError instead of running
// forever or exponentially long.
type walker struct {
	ix     *index
	budget int
}

func (ix *index) walker() *walker {
	return &walker{ix: ix, budget: len(ix.data)}
}

func (w *walker) visit(off uint32, depth int) (node, bool, error) {
	n, ok, err := w.ix.read(off)
	if err != nil || !ok {
		return n, ok, err
	}
	w.budget -= max(n.size, 1)
	if w.budget < 0 {
		return n, false, w.ix.errAt(int(n.off), "node offsets loop or are shared")
	}
	if depth > maxDepth {
		return n, false, w.ix.errAt(int(n.off), "trie too deep")
	}
	return n, true, nil
}

// searchWild is index_mm_searchwild: the keys of the index are fnmatch
// patterns; it returns the values of every pattern matching key, ordered
// as libkmod orders them.
func (ix *index) searchWild(key string) ([]value, error) {
	w := ix.walker()
	var out []value
	buf := make([]byte, 0, 256)
	off := ix.root
	i := 0
	for depth := 0; ; depth++ {
		n, ok, err := w.visit(off, depth)
		if err != nil || !ok {
			return out, err
		}
		for j, ch := range n.prefix {
			if ch == '*' || ch == '?' || ch == '[' {
				err := w.all(n, j, buf, key[i+j:], &out, depth)
				return out, err
			}
			if i+j >= len(key) || key[i+j] != ch {
				return out, nil
			}
		}
		i += len(n.prefix)
		for _, wc := range [...]byte{'*', '?', '['} {
			c := n.child(wc)
			if c == 0 {
				continue
			}
			cn, ok, err := w.visit(c, depth+1)
			if err != nil {
				return out, err
			}
			if ok {
				if err := w.all(cn, 0, append(buf[:0], wc), key[i:], &out, depth+1); err != nil {
					return out, err
				}
			}
		}
		if i == len(key) {
			n.eachValue(func(p uint32, b []byte) { out = addValue(out, value{p, string(b)}) })
			return out, nil
		}
		off = n.child(key[i])
		i++
	}
}

// all is index_mm_searchwild_all: walk the whole subtree under a wildcard,
// children first, and fnmatch each key (from the wildcard on) against the
// rest of the search key.
func (w *walker) all(n node, j int, buf []byte, subkey string, out *[]value, depth int) error {
	buf = append(buf, n.prefix[j:]...)
	for ch := n.first; n.hasChild && ch <= n.last; ch++ {
		c := n.child(byte(ch))
		if c == 0 {
			continue
		}
		cn, ok, err := w.visit(c, depth+1)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := w.all(cn, 0, append(buf, byte(ch)), subkey, out, depth+1); err != nil {
			return err
		}
	}
	// buf is not modified while Match runs, so viewing it as a string
	// without a copy is safe and saves an allocation per value node.
	if n.nvals > 0 && len(buf) > 0 && fnmatch.Match(unsafe.String(&buf[0], len(buf)), subkey) {
		n.eachValue(func(p uint32, b []byte) { *out = addValue(*out, value{p, string(b)}) })
	}
	return nil
}

// dump is index_mm_dump: "PREFIXKEY VALUE\n" for every value, in trie
// walk order (a node's values, then its children by character).
func (ix *index) dump(wr io.Writer, prefix string) error {
	bw := bufio.NewWriter(wr)
	err := ix.walk([]byte(prefix), func(key, val []byte) {
		bw.Write(key)
		bw.WriteByte(' ')
		bw.Write(val)
		bw.WriteByte('\n')
	})
	// The lines before a corrupt node are flushed with the error.
	return errors.Join(err, bw.Flush())
}

// walk calls fn with prefix+key and the value for every value of the index,
// in dump order. The slices are valid only during the call.
func (ix *index) walk(prefix []byte, fn func(key, val []byte)) error {
	w := ix.walker()
	n, ok, err := w.visit(ix.root, 0)
	if err != nil || !ok {
		return err
	}
	return w.walkNode(n, prefix, 0, fn)
}

func (w *walker) walkNode(n node, buf []byte, depth int, fn func(key, val []byte)) error {
	buf = append(buf, n.prefix...)
	n.eachValue(func(_ uint32, v []byte) { fn(buf, v) })
	for ch := n.first; n.hasChild && ch <= n.last; ch++ {
		c := n.child(byte(ch))
		if c == 0 {
			continue
		}
		cn, ok, err := w.visit(c, depth+1)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := w.walkNode(cn, append(buf, byte(ch)), depth+1, fn); err != nil {
			return err
		}
	}
	return nil
}
