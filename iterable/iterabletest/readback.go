package iterabletest

import (
	"cmp"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Limits of the GET events endpoints.
const (
	defaultGetLimit = 30
	maxGetLimit     = 200
)

// Stats counts trackBulk requests and their responses.
type Stats struct {
	// Requests is the number of trackBulk requests received.
	Requests int
	// ByStatus counts responses by HTTP status. Key 0 counts requests that
	// got no response: connection resets, hangs and clients that left.
	ByStatus map[int]int
}

// recordRequest counts a finished trackBulk request.
func (s *Server) recordRequest(rec *statusRecorder, started time.Time) {
	s.mu.Lock()
	s.stats.Requests++
	s.stats.ByStatus[rec.status]++
	s.mu.Unlock()
	s.logger.Debug("trackBulk request", "status", rec.status, "duration", time.Since(started))
}

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Requests: s.stats.Requests, ByStatus: maps.Clone(s.stats.ByStatus)}
}

// RequestCount returns the number of trackBulk requests received, whatever
// their outcome.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.Requests
}

// Events returns a copy of the events stored in the project of key, in the
// order they were first stored, including events still hidden from the GET
// endpoints by the ingestion delay. It returns nil for an unknown key.
func (s *Server) Events(key string) []StoredEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.project(key)
	if p == nil {
		return nil
	}
	events := make([]StoredEvent, len(p.events))
	for i, e := range p.events {
		events[i] = e
		events[i].DataFields = copyJSONObject(e.DataFields)
	}
	return events
}

// EventCount returns the number of events stored in the project of key.
// An event sent again with the same id is counted once.
func (s *Server) EventCount(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.project(key); p != nil {
		return len(p.events)
	}
	return 0
}

// eventRecord is one event in a GET events response.
type eventRecord struct {
	ID             string         `json:"id"`
	EventName      string         `json:"eventName"`
	EventType      string         `json:"eventType"`
	Email          string         `json:"email,omitempty"`
	UserID         string         `json:"userId,omitempty"`
	CreatedAt      string         `json:"createdAt"`
	EventUpdatedAt string         `json:"eventUpdatedAt"`
	CampaignID     int64          `json:"campaignId,omitempty"`
	TemplateID     int64          `json:"templateId,omitempty"`
	DataFields     map[string]any `json:"dataFields"`
}

// handleGetByEmail serves GET /api/events/{email}.
func (s *Server) handleGetByEmail(w http.ResponseWriter, r *http.Request) {
	email := r.PathValue("email")
	s.serveEvents(w, r, func(e *StoredEvent) bool { return e.Email == email })
}

// handleGetByUserID serves GET /api/events/byUserId/{userId}.
func (s *Server) handleGetByUserID(w http.ResponseWriter, r *http.Request) {
	userID := r.PathValue("userId")
	s.serveEvents(w, r, func(e *StoredEvent) bool { return e.UserID == userID })
}

// serveEvents sends the visible events that match, newest first, up to the
// limit query parameter.
func (s *Server) serveEvents(
	w http.ResponseWriter, r *http.Request, match func(*StoredEvent) bool,
) {
	p := s.authenticate(w, r)
	if p == nil {
		return
	}
	limit := defaultGetLimit
	if raw := r.URL.Query().Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxGetLimit {
			writeError(w, http.StatusBadRequest, "BadParams",
				"limit must be an integer from 1 to 200", map[string]any{"limit": raw})
			return
		}
		limit = n
	}

	now := time.Now()
	s.mu.Lock()
	var found []StoredEvent
	for i := range p.events {
		e := &p.events[i]
		if !e.VisibleAt.After(now) && match(e) {
			found = append(found, *e)
		}
	}
	s.mu.Unlock()

	slices.SortStableFunc(found, func(a, b StoredEvent) int {
		return cmp.Compare(b.CreatedAt, a.CreatedAt)
	})
	records := make([]eventRecord, 0, min(limit, len(found)))
	for _, e := range found[:min(limit, len(found))] {
		records = append(records, newEventRecord(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": records})
}

// newEventRecord formats e as the GET endpoints return it, with dates in
// Iterable's display format.
func newEventRecord(e StoredEvent) eventRecord {
	const layout = "2006-01-02 15:04:05 -07:00"
	data := copyJSONObject(e.DataFields)
	if data == nil {
		data = map[string]any{}
	}
	return eventRecord{
		ID:             e.ID,
		EventName:      e.EventName,
		EventType:      "customEvent",
		Email:          e.Email,
		UserID:         e.UserID,
		CreatedAt:      time.Unix(e.CreatedAt, 0).UTC().Format(layout),
		EventUpdatedAt: e.UpdatedAt.UTC().Format(layout),
		CampaignID:     e.CampaignID,
		TemplateID:     e.TemplateID,
		DataFields:     data,
	}
}

// copyJSONObject deep-copies a decoded JSON object, so callers cannot
// change stored events.
func copyJSONObject(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = copyJSONValue(v)
	}
	return out
}

func copyJSONValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return copyJSONObject(v)
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = copyJSONValue(item)
		}
		return out
	}
	return v
}
