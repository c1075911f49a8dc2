package moddb

import (
	"encoding/binary"
	"sort"
)

// trie is an in-memory index built the way depmod builds one (index_insert
// in tools/depmod.c), so that serialising it gives the file depmod writes
// for the same keys, values and priorities.
type trie struct {
	prefix string
	kids   []trieKid // sorted by ch
	values []value
	off    int // assigned by layout
}

type trieKid struct {
	ch byte
	n  *trie
}

func (t *trie) kid(ch byte) *trie {
	i := sort.Search(len(t.kids), func(i int) bool { return t.kids[i].ch >= ch })
	if i < len(t.kids) && t.kids[i].ch == ch {
		return t.kids[i].n
	}
	return nil
}

func (t *trie) setKid(ch byte, n *trie) {
	i := sort.Search(len(t.kids), func(i int) bool { return t.kids[i].ch >= ch })
	if i < len(t.kids) && t.kids[i].ch == ch {
		t.kids[i].n = n
		return
	}
	t.kids = append(t.kids, trieKid{})
	copy(t.kids[i+1:], t.kids[i:])
	t.kids[i] = trieKid{ch, n}
}

// insert adds value under key. Keys and values must be 7-bit ASCII without
// NUL; callers check with validKey. It reports whether the node already
// held an equal value (depmod's "duplicate", the value is added anyway).
func (t *trie) insert(key, val string, prio uint32) (duplicate bool) {
	node := t
	i := 0
	for {
		// Split node when its prefix is not a prefix of key[i:].
		for j := 0; j < len(node.prefix); j++ {
			ch := node.prefix[j]
			if i+j >= len(key) || key[i+j] != ch {
				rest := &trie{prefix: node.prefix[j+1:], kids: node.kids, values: node.values}
				node.prefix = node.prefix[:j]
				node.kids = []trieKid{{ch, rest}}
				node.values = nil
				break
			}
		}
		i += len(node.prefix)
		if i == len(key) {
			for _, v := range node.values {
				duplicate = duplicate || v.s == val
			}
			node.values = addValue(node.values, value{prio, val})
			return duplicate
		}
		ch := key[i]
		next := node.kid(ch)
		if next == nil {
			next = &trie{prefix: key[i+1:]}
			next.values = addValue(nil, value{prio, val})
			node.setKid(ch, next)
			return false
		}
		node = next
		i++
	}
}

// validKey reports whether s can be stored in an index: 7-bit, no NUL.
func validKey(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] >= childMax {
			return false
		}
	}
	return true
}

func (t *trie) size() int {
	n := 0
	if t.prefix != "" {
		n += len(t.prefix) + 1
	}
	if len(t.kids) > 0 {
		n += 2 + 4*(int(t.kids[len(t.kids)-1].ch)-int(t.kids[0].ch)+1)
	}
	if len(t.values) > 0 {
		n += 4
		for _, v := range t.values {
			n += 4 + len(v.s) + 1
		}
	}
	return n
}

// layout assigns offsets from off on: parents before children (kmod 34,
// preOrder) or children before parents (kmod 30). It returns the end.
func (t *trie) layout(off int, preOrder bool) int {
	if preOrder {
		t.off = off
		off += t.size()
	}
	for _, k := range t.kids {
		off = k.n.layout(off, preOrder)
	}
	if !preOrder {
		t.off = off
		off += t.size()
	}
	return off
}

func (t *trie) flagged() uint32 {
	o := uint32(t.off)
	if t.prefix != "" {
		o |= flagPrefix
	}
	if len(t.kids) > 0 {
		o |= flagChilds
	}
	if len(t.values) > 0 {
		o |= flagValues
	}
	return o
}

func (t *trie) write(b []byte) {
	p := b[t.off:t.off]
	if t.prefix != "" {
		p = append(p, t.prefix...)
		p = append(p, 0)
	}
	if len(t.kids) > 0 {
		first, last := t.kids[0].ch, t.kids[len(t.kids)-1].ch
		p = append(p, first, last)
		offs := make([]uint32, int(last-first)+1)
		for _, k := range t.kids {
			offs[k.ch-first] = k.n.flagged()
		}
		for _, o := range offs {
			p = binary.BigEndian.AppendUint32(p, o)
		}
	}
	if len(t.values) > 0 {
		p = binary.BigEndian.AppendUint32(p, uint32(len(t.values)))
		for _, v := range t.values {
			p = binary.BigEndian.AppendUint32(p, v.prio)
			p = append(p, v.s...)
			p = append(p, 0)
		}
	}
	for _, k := range t.kids {
		k.n.write(b)
	}
}

// encode serialises the trie in the binary index format.
func (t *trie) encode(preOrder bool) []byte {
	end := t.layout(headerSize, preOrder)
	b := make([]byte, end)
	binary.BigEndian.PutUint32(b, indexMagic)
	binary.BigEndian.PutUint32(b[4:], indexVersion)
	binary.BigEndian.PutUint32(b[8:], t.flagged())
	t.write(b)
	return b
}
