package ingest

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// timingSink keeps the compiler from dropping the timed calls.
var timingSink int

// timedCheck is one key set and one candidate to time.
type timedCheck struct {
	name      string
	set       keySet
	candidate string
}

// medianRatios measures set.contains(candidate) of each check in rounds of
// calls. For each check it returns the median over the rounds of its time
// divided by the time of checks[0] in the same round, and the median time
// per call. Checks take turns within each round in a shuffled order, and
// the ratio pairs measurements of one round, so that a burst of load on the
// machine cancels out.
func medianRatios(checks []timedCheck, rounds, calls int) ([]float64, []time.Duration) {
	times := make([][]time.Duration, len(checks))
	order := make([]int, len(checks))
	for i := range order {
		order[i] = i
	}
	for range rounds {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			c := checks[i]
			start := time.Now()
			for range calls {
				if c.set.contains(c.candidate) {
					timingSink++
				}
			}
			times[i] = append(times[i], time.Since(start)/time.Duration(calls))
		}
	}
	ratios := make([]float64, len(checks))
	medians := make([]time.Duration, len(checks))
	for i := range checks {
		perRound := make([]float64, rounds)
		for r := range rounds {
			perRound[r] = float64(times[i][r]) / float64(times[0][r])
		}
		slices.Sort(perRound)
		ratios[i] = perRound[rounds/2]
		sorted := slices.Sorted(slices.Values(times[i]))
		medians[i] = sorted[rounds/2]
	}
	return ratios, medians
}

// TestKeySetTimeIndependentOfKey checks that the time of a key check does
// not depend on how much of a configured key the candidate matches, nor on
// the length of the configured keys. Method: in each of 51 rounds, the mean
// time of 5,000 calls per candidate is divided by that of a random candidate
// of the same length, and the median of these ratios must be within 0.8 to
// 1.25. The real difference is zero (SHA-256 of the candidate, then
// constant-time comparisons of fixed-size digests), so the margin only
// absorbs noise.
func TestKeySetTimeIndependentOfKey(t *testing.T) {
	if testing.Short() {
		t.Skip("timing measurement takes a few seconds")
	}
	const key = "live-7Qm2xV9pL4sT8wK1zR6nB3cY5hJ0dF"
	// Every set has two keys, because the time grows with the number of
	// keys, which is not secret.
	short, _ := newKeySet([]string{"k1", "k2"})
	long, _ := newKeySet([]string{strings.Repeat("x", 200), strings.Repeat("y", 200)})
	set, err := newKeySet([]string{key, "previous-key-value-0000000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	random := strings.Repeat("Z", len(key))
	checks := []timedCheck{
		{"random, same length as the key", set, random},
		{"right key", set, key},
		{"first byte wrong", set, "X" + key[1:]},
		{"last byte wrong", set, key[:len(key)-1] + "X"},
		{"half the key right", set, key[:len(key)/2] + random[len(key)/2:]},
		{"random against a 2-byte key", short, random},
		{"random against a 200-byte key", long, random},
	}
	ratios, medians := medianRatios(checks, 51, 5000)

	for i, c := range checks {
		t.Logf("%-32s %v per call, %.2f of random", c.name, medians[i], ratios[i])
		if ratios[i] < 0.8 || ratios[i] > 1.25 {
			t.Errorf("%s: median time ratio to a random candidate is %.2f, want 0.8 to 1.25",
				c.name, ratios[i])
		}
	}
}

func TestKeySetContainsAllocations(t *testing.T) {
	set, err := newKeySet([]string{testKey, testOldKey})
	if err != nil {
		t.Fatal(err)
	}
	right := testing.AllocsPerRun(100, func() { set.contains(testKey) })
	wrong := testing.AllocsPerRun(100, func() { set.contains("key-current-7f3b") })
	if right != wrong {
		t.Errorf("allocations: right key %v, wrong key %v; want the same work for both", right, wrong)
	}
}
