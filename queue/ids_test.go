package queue

import (
	"regexp"
	"slices"
	"testing"
	"time"
)

var uuidV7Pattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewMessageIDFormat(t *testing.T) {
	id := NewMessageID()
	if !uuidV7Pattern.MatchString(id) {
		t.Fatalf("NewMessageID() = %q, want a lowercase UUIDv7", id)
	}
}

func TestNewMessageIDSorted(t *testing.T) {
	const n = 10000 // more than the 4096 ids a millisecond can hold
	ids := make([]string, n)
	for i := range ids {
		ids[i] = NewMessageID()
	}
	if !slices.IsSorted(ids) {
		t.Error("ids made one after another are not in ascending order")
	}
	if len(slices.Compact(slices.Clone(ids))) != n {
		t.Error("ids made one after another contain duplicates")
	}
}

func TestIDClockStepsBack(t *testing.T) {
	var clock idClock
	now := time.Now().UnixMilli()
	first, _ := clock.next(now)
	second, counter := clock.next(now - 1000)
	if second != first {
		t.Errorf("millisecond after the clock stepped back = %d, want %d", second, first)
	}
	if counter == 0 {
		t.Error("counter after the clock stepped back = 0, want it to keep counting")
	}
}

func TestNewReceiptDistinct(t *testing.T) {
	a, b := NewReceipt(), NewReceipt()
	if a == b {
		t.Fatalf("two receipts are equal: %q", a)
	}
	if len(a) < 26 {
		t.Errorf("receipt %q is shorter than 26 characters (128 bits in base32)", a)
	}
}
