// Package reliability contains Layover's fault tests and no other code.
//
// The tests store realistic mParticle workloads, then drive the forwarder,
// the layover binary and the SQLite queue through three kinds of fault.
// Destination faults are 5xx, 429, timeouts, resets, failure lists and a
// revoked key. Process faults are SIGKILL of serve and of forward. Storage
// faults are a full disk, a read-only or locked data folder, and a foreign
// or corrupted database file.
// Each test checks that no acknowledged batch is lost, that every event is
// delivered, rejected with its reason or skipped by the mapping, and that
// Iterable stores each event id once.
//
// Set LAYOVER_RELIABILITY_REPORT to a file path to append one JSON line of
// counts per scenario to that file. docs/reliability.md quotes those counts.
package reliability
