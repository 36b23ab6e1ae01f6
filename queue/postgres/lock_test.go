package postgres

import (
	"testing"

	"github.com/layover-dev/layover/queue"
)

func TestForwarderLockExcludesSecondQueue(t *testing.T) {
	ctx := testContext(t)
	url := newSchemaURL(t)
	first := openAt(t, url, queue.Options{})
	second := openAt(t, url, queue.Options{})

	unlock, ok, err := first.TryLockForwarder(ctx)
	if err != nil {
		t.Fatalf("first TryLockForwarder: %v", err)
	}
	if !ok {
		t.Fatal("first TryLockForwarder: lock not taken on a free lock")
	}
	_, ok, err = second.TryLockForwarder(ctx)
	if err != nil {
		t.Fatalf("second TryLockForwarder: %v", err)
	}
	if ok {
		t.Fatal("second TryLockForwarder took the lock while the first held it")
	}

	unlock()
	unlock() // a second call must be harmless
	unlock2, ok, err := second.TryLockForwarder(ctx)
	if err != nil {
		t.Fatalf("second TryLockForwarder after unlock: %v", err)
	}
	if !ok {
		t.Fatal("second TryLockForwarder: lock not taken after the first unlocked")
	}
	unlock2()
}

func TestForwarderLockPerSchema(t *testing.T) {
	ctx := testContext(t)
	a := openTest(t, queue.Options{})
	b := openTest(t, queue.Options{})

	unlockA, okA, err := a.TryLockForwarder(ctx)
	if err != nil || !okA {
		t.Fatalf("TryLockForwarder in schema a = %v, %v; want the lock", okA, err)
	}
	defer unlockA()
	unlockB, okB, err := b.TryLockForwarder(ctx)
	if err != nil || !okB {
		t.Fatalf("TryLockForwarder in schema b = %v, %v; want the lock", okB, err)
	}
	unlockB()
}

func TestForwarderLockSurvivesClose(t *testing.T) {
	ctx := testContext(t)
	url := newSchemaURL(t)
	first := openAt(t, url, queue.Options{})
	second := openAt(t, url, queue.Options{})

	unlock, ok, err := first.TryLockForwarder(ctx)
	if err != nil || !ok {
		t.Fatalf("TryLockForwarder = %v, %v; want the lock", ok, err)
	}
	defer unlock()
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, ok, _ := second.TryLockForwarder(ctx); ok {
		t.Error("lock taken by another queue after Close, want it held until unlock")
	}
}
