package moddb

import "fmt"

// Order is the node layout of a written index.
type Order int

const (
	// PreOrder puts every node before its children, root first: kmod 34 and
	// later.
	PreOrder Order = iota
	// PostOrder puts children before their parent, root last: kmod 33 and
	// earlier.
	PostOrder
)

// Index is a binary trie being built, node for node as depmod builds one
// (index_insert in tools/depmod.c): writing it gives the bytes depmod
// writes for the same insertions in the same order. The zero value is an
// empty index.
type Index struct {
	root trie
}

// Insert adds value under key with priority prio. Values of one key are
// kept by ascending priority, a value going before those of equal
// priority, as depmod keeps them. duplicate reports that the key already
// had this value (depmod's -w warning); it is added again all the same.
// Keys and values must be 7-bit ASCII without NUL.
func (ix *Index) Insert(key, value string, prio uint32) (duplicate bool, err error) {
	if !validKey(key) {
		return false, fmt.Errorf("index key %q: %w", key, ErrNotASCII)
	}
	if !validKey(value) {
		return false, fmt.Errorf("index value %q: %w", value, ErrNotASCII)
	}
	return ix.root.insert(key, value, prio), nil
}

// Bytes returns the index file in the given node order.
func (ix *Index) Bytes(o Order) []byte {
	return ix.root.encode(o == PreOrder)
}
