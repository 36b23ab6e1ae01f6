package mparticle

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDecode decodes each batch of testdata in turn.
func BenchmarkDecode(b *testing.B) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(paths) == 0 {
		b.Fatalf("no testdata batches: %v", err)
	}
	var bodies [][]byte
	size := 0
	for _, path := range paths {
		body, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, body)
		size += len(body)
	}
	b.SetBytes(int64(size / len(bodies)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := Decode(bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
