// Package mapping turns decoded mParticle events into Iterable trackBulk
// events, driven by a Config whose defaults docs/mapping.md explains.
//
// Map returns one Result per input event. The outcome is Forward with a
// ready event, or Skip when the event type is off or unknown or the batch
// came from Iterable's own feed. It is Reject when the event can never be
// delivered, such as one without a usable identity.
//
// Each event gets a deterministic id, so a redelivery updates the event in
// Iterable instead of adding a copy. Every dataFields value keeps one type
// across events, because Iterable rejects a whole request on a field type
// conflict.
package mapping
