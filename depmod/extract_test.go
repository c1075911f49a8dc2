package depmod

import (
	"slices"
	"testing"
)

// TestDispatchOrder: compressed modules go to the workers largest first,
// then the plain ones in their own order.
func TestDispatchOrder(t *testing.T) {
	mk := func(name string, packed int64) *module { return &module{name: name, packed: packed} }
	mods := []*module{mk("a", 0), mk("b", 10), mk("c", 0), mk("d", 300), mk("e", 20)}
	var got []string
	for _, m := range dispatchOrder(mods) {
		got = append(got, m.name)
	}
	if want := []string{"d", "e", "b", "a", "c"}; !slices.Equal(got, want) {
		t.Errorf("dispatch order %v, want %v", got, want)
	}
	if mods[0].name != "a" || mods[1].name != "b" {
		t.Errorf("dispatchOrder reordered its argument")
	}
}
