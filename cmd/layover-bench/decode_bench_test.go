package main

import (
	"testing"

	"github.com/layover-dev/layover/mparticle"
)

// BenchmarkDecodeGenerated decodes the benchmark's generated batches of 5
// to 10 KB, which are larger than the testdata batches of the mparticle
// package and closer to what the forwarder benchmark drains.
func BenchmarkDecodeGenerated(b *testing.B) {
	set := generateBodies(1, 64)
	size := 0
	for _, body := range set.bodies {
		size += len(body)
	}
	b.SetBytes(int64(size / len(set.bodies)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := mparticle.Decode(set.bodies[i%len(set.bodies)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
