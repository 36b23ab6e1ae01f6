package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// Size range of a generated webhook body, in bytes.
const (
	minBodyBytes = 5_000
	maxBodyBytes = 10_000
)

// batchGenerator builds mParticle webhook bodies in the outbound shape that
// mParticle's Webhook output sends: a user's identities, device and app
// context, and a session's events. Every batch gets new ids, so no two
// events share an Iterable event id.
type batchGenerator struct {
	rng *rand.Rand
	seq uint64
}

func newBatchGenerator(seed uint64) *batchGenerator {
	return &batchGenerator{rng: rand.New(rand.NewPCG(seed, 0x6c61796f766572))}
}

// screens and the other lists are the vocabulary of generated events.
var (
	screens    = []string{"Home", "Search", "Product Detail", "Cart", "Checkout", "Settings", "Orders", "Profile"}
	referrers  = []string{"push", "email", "deep_link", "organic", "search"}
	platforms  = []string{"iOS", "Android"}
	carriers   = []string{"AT&T", "Verizon", "T-Mobile", "Vodafone"}
	customs    = []string{"Wishlist Added", "Filter Applied", "Coupon Viewed", "Share Tapped"}
	connection = []string{"wifi", "mobile"}
)

// next returns one body and its batch number for renumber. The body has minBodyBytes to maxBodyBytes and 8 to 10
// events: a session start, a foreground transition, screen views, a custom
// event, sometimes an add-to-cart, a background transition and a session
// end. With the default mapping, the custom event is skipped.
func (g *batchGenerator) next() ([]byte, uint64) {
	for {
		body := g.build()
		if len(body) >= minBodyBytes && len(body) <= maxBodyBytes {
			return body, g.seq
		}
	}
}

func (g *batchGenerator) build() []byte {
	g.seq++
	r := g.rng
	user := r.Uint64() >> 12
	start := int64(1764800000000) + r.Int64N(30*24*3600*1000)
	session := g.session(start)

	events := []map[string]any{
		session.event("session_start", nil),
		session.event("application_state_transition", map[string]any{
			"application_transition_type": "application_foreground",
			"is_first_run":                false,
			"is_upgrade":                  r.IntN(20) == 0,
		}),
	}
	total := 8 + r.IntN(3)
	commerce := r.IntN(3) == 0
	views := total - 5
	if commerce {
		views--
	}
	for range views {
		events = append(events, session.event("screen_view", map[string]any{
			"screen_name": screens[r.IntN(len(screens))],
			"custom_attributes": map[string]any{
				"referrer":    referrers[r.IntN(len(referrers))],
				"items_shown": fmt.Sprint(r.IntN(40)),
				"ab_group":    fmt.Sprintf("variant-%c", 'a'+r.IntN(3)),
			},
		}))
	}
	events = append(events, session.event("custom_event", map[string]any{
		"event_name":        customs[r.IntN(len(customs))],
		"custom_event_type": "user_preference",
		"custom_attributes": map[string]any{"product_id": fmt.Sprintf("sku-%d", r.IntN(5000))},
	}))
	if commerce {
		events = append(events, session.event("commerce_event", g.addToCart()))
	}
	events = append(events,
		session.event("application_state_transition", map[string]any{
			"application_transition_type": "application_background",
		}),
		session.event("session_end", map[string]any{"session_duration_ms": session.elapsed}),
	)

	platform := platforms[r.IntN(len(platforms))]
	batch := map[string]any{
		"schema_version":        2,
		"environment":           "production",
		"mpid":                  int64(r.Uint64()),
		"batch_id":              int64(r.Uint64()),
		"timestamp_unixtime_ms": start + session.elapsed + 500,
		"user_identities": []map[string]any{
			{"identity_type": "customer_id", "identity": fmt.Sprintf("cust-%d", user)},
			{"identity_type": "email", "identity": fmt.Sprintf("user%d@example.com", user)},
		},
		"user_attributes": map[string]any{
			"$firstname": "Ada", "$lastname": "Lovelace", "plan": "pro", "$city": "London",
			"loyalty_points": fmt.Sprint(r.IntN(10000)),
		},
		"device_info":      g.deviceInfo(platform),
		"application_info": g.applicationInfo(),
		"source_info":      map[string]any{"channel": "native", "is_historical": false},
		"ip":               fmt.Sprintf("203.0.113.%d", 1+r.IntN(254)),
		"events":           events,
	}
	body, err := json.Marshal(batch)
	if err != nil {
		panic(fmt.Sprintf("encode generated batch: %v", err)) // only plain values above
	}
	return body
}

// sessionState numbers the events of one generated session.
type sessionState struct {
	g       *batchGenerator
	id      int64
	uuid    string
	start   int64
	elapsed int64
	n       int
}

func (g *batchGenerator) session(start int64) *sessionState {
	r := g.rng
	return &sessionState{
		g:     g,
		id:    int64(r.Uint64() >> 1),
		uuid:  fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Int64N(1<<48)),
		start: start,
	}
}

// event returns one {event_type, data} envelope with the fields every
// mParticle event carries, plus fields.
func (s *sessionState) event(kind string, fields map[string]any) map[string]any {
	r := s.g.rng
	s.n++
	s.elapsed += 1000 + r.Int64N(30_000)
	data := map[string]any{
		"source_message_id":         fmt.Sprintf("%s-%s-%02d", s.uuid[:8], seqToken(s.g.seq), s.n),
		"event_id":                  int64(r.Uint64()),
		"session_id":                s.id,
		"session_uuid":              s.uuid,
		"timestamp_unixtime_ms":     s.start + s.elapsed,
		"session_start_unixtime_ms": s.start,
	}
	// Web SDKs and devices without permission send no location, and some
	// SDK versions leave out the device state.
	if r.IntN(3) > 0 {
		data["location"] = map[string]any{
			"latitude": 51.5 + r.Float64()/10, "longitude": -0.12 + r.Float64()/10, "accuracy": 20 + r.Float64()*100,
		}
	}
	if r.IntN(4) > 0 {
		data["device_current_state"] = map[string]any{
			"time_since_start_ms":             s.elapsed,
			"battery_level":                   r.Float64(),
			"data_connection_type":            connection[r.IntN(len(connection))],
			"gps_state":                       r.IntN(2) == 0,
			"total_system_memory_usage_bytes": 2_000_000_000 + r.Int64N(1_000_000_000),
			"disk_space_free_bytes":           20_000_000_000 + r.Int64N(10_000_000_000),
			"device_orientation":              "portrait",
			"status_bar_orientation":          "portrait",
		}
	}
	for k, v := range fields {
		data[k] = v
	}
	return map[string]any{"event_type": kind, "data": data}
}

func (g *batchGenerator) addToCart() map[string]any {
	r := g.rng
	price := float64(500+r.IntN(10000)) / 100
	return map[string]any{
		"currency_code": "USD",
		"product_action": map[string]any{
			"action":       "add_to_cart",
			"total_amount": price,
			"products": []map[string]any{{
				"id": fmt.Sprintf("sku-%d", r.IntN(5000)), "name": "Leather Weekender", "brand": "Layover Goods",
				"category": "Bags", "price": price, "quantity": 1,
			}},
		},
	}
}

func (g *batchGenerator) deviceInfo(platform string) map[string]any {
	r := g.rng
	info := map[string]any{
		"platform": platform, "os_version": fmt.Sprintf("%d.%d", 14+r.IntN(5), r.IntN(4)),
		"device_manufacturer": "Apple", "device_model": "iPhone15,2", "screen_height": 2556, "screen_width": 1179,
		"screen_dpi": 460, "device_country": "GB", "locale_language": "en", "locale_country": "GB",
		"network_country": "gb", "network_carrier": carriers[r.IntN(len(carriers))], "timezone_offset": 0,
		"is_tablet": false, "limit_ad_tracking": false, "is_dst": false, "radio_access_technology": "LTE",
		"http_header_user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) mParticle/8.19.0",
	}
	if platform == "Android" {
		info["device_manufacturer"] = "Google"
		info["device_model"] = "Pixel 8"
		info["android_uuid"] = fmt.Sprintf("%016x", r.Uint64())
	} else {
		info["ios_idfv"] = fmt.Sprintf("%08x-0000-4000-8000-%012x", r.Uint32(), r.Int64N(1<<48))
	}
	return info
}

func (g *batchGenerator) applicationInfo() map[string]any {
	return map[string]any{
		"application_name": "Layover Shop", "application_version": "4.2.0",
		"application_build_number": "420", "package": "com.example.shop",
		"install_referrer": "utm_campaign=spring&utm_source=newsletter&utm_medium=email",
	}
}

// bodySet is a set of generated bodies with their batch numbers.
type bodySet struct {
	bodies [][]byte
	seqs   []uint64
}

// generateBodies returns n bodies from a generator seeded with seed.
func generateBodies(seed uint64, n int) bodySet {
	g := newBatchGenerator(seed)
	set := bodySet{bodies: make([][]byte, n), seqs: make([]uint64, n)}
	for i := range set.bodies {
		set.bodies[i], set.seqs[i] = g.next()
	}
	return set
}

// unique returns body number i of an endless series of distinct bodies:
// a renumbered copy of one of the set's bodies.
func (s bodySet) unique(i int) []byte {
	k := i % len(s.bodies)
	return renumber(s.bodies[k], s.seqs[k], copySeqBase+uint64(i))
}

// seqToken is the part of every source_message_id of a batch that numbers
// the batch: 16 hex digits.
func seqToken(seq uint64) string {
	return fmt.Sprintf("%016x", seq)
}

// copySeqBase numbers the copies that renumber makes, far above the
// numbers of generated batches, so that a copy never repeats an id.
const copySeqBase = 1 << 40

// renumber returns a copy of the generated body whose batch number was
// from, with its source_message_ids renumbered to to. It is a cheap way to
// make many unique batches from a few generated ones, because generating
// one takes about 0.2 ms.
func renumber(body []byte, from, to uint64) []byte {
	return bytes.ReplaceAll(body, []byte("-"+seqToken(from)+"-"), []byte("-"+seqToken(to)+"-"))
}
