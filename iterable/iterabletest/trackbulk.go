package iterabletest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/layover-dev/layover/iterable"
)

// bulkResponse is the 200 body of trackBulk. Unlike iterable's client type
// it has no omitempty, because Iterable sends every list, empty as [].
type bulkResponse struct {
	SuccessCount         int           `json:"successCount"`
	FailCount            int           `json:"failCount"`
	CreatedFields        []string      `json:"createdFields"`
	FilteredOutFields    []string      `json:"filteredOutFields"`
	DisallowedEventNames []string      `json:"disallowedEventNames"`
	FailedUpdates        failedUpdates `json:"failedUpdates"`
	// Deprecated duplicates that Iterable still sends.
	InvalidEmails  []string `json:"invalidEmails"`
	InvalidUserIDs []string `json:"invalidUserIds"`
}

// failedUpdates lists one identifier per failed event, so a user with two
// failed events appears twice.
type failedUpdates struct {
	InvalidEmails    []string `json:"invalidEmails"`
	InvalidUserIDs   []string `json:"invalidUserIds"`
	NotFoundEmails   []string `json:"notFoundEmails"`
	NotFoundUserIDs  []string `json:"notFoundUserIds"`
	ForgottenEmails  []string `json:"forgottenEmails"`
	ForgottenUserIDs []string `json:"forgottenUserIds"`
}

// acceptedEvent is an event that passed every per-event check.
type acceptedEvent struct {
	event  trackEvent
	user   User
	create bool
}

// handleTrackBulk serves POST /api/events/trackBulk in Iterable's order:
// faults, authentication, rate limit, size limit, JSON types, then the
// per-event checks.
func (s *Server) handleTrackBulk(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	defer s.recordRequest(rec, time.Now())

	if f, ok := s.nextFault(); ok && s.serveFault(rec, r, f) {
		return
	}
	p := s.authenticate(rec, r)
	if p == nil {
		return
	}
	s.mu.Lock()
	allowed := s.limits.allow(p.number, time.Now())
	body, retryAfter := s.limits.body, s.limits.retryAfter
	s.mu.Unlock()
	if !allowed {
		writeRateLimited(rec, body, retryAfter)
		return
	}

	data, ok := s.readBody(rec, r)
	if !ok {
		return
	}
	events, problems := decodeTrackBulk(data)
	if problems != nil {
		writeError(rec, http.StatusBadRequest, iterable.CodeBadJSONBody,
			"["+iterable.TrackBulkPath+"] Invalid JSON body", problems)
		return
	}
	status, response := s.track(p, events)
	writeJSON(rec, status, response)
}

// authenticate returns the project of the request's Api-Key or Api_Key
// header, or sends 401 BadApiKey and returns nil.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) *project {
	key := r.Header.Get("Api-Key")
	if key == "" {
		// Header names are case-insensitive, so this also reads api_key.
		key = r.Header.Get("Api_Key")
	}
	s.mu.Lock()
	p := s.project(key)
	s.mu.Unlock()
	if p != nil && !p.revoked {
		return p
	}

	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	params := map[string]any{"ip": ip, "endpoint": r.URL.Path}
	msg := "Invalid API key"
	if p != nil {
		msg = "Disabled API key or insufficient privileges"
		sum := sha256.Sum256([]byte(key))
		params["apiKeyIdentifier"] = hex.EncodeToString(sum[:4])
		params["apiKeyType"] = "ServerSide"
	}
	writeError(w, http.StatusUnauthorized, iterable.CodeBadAPIKey, msg, params)
	return nil
}

// readBody reads the request body up to the size limit, or sends 413
// BatchTooLarge and reports false.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	tooLarge := func() ([]byte, bool) {
		writeError(w, http.StatusRequestEntityTooLarge, iterable.CodeBatchTooLarge,
			fmt.Sprintf("Request body exceeds the limit of %d bytes", s.maxBody), nil)
		return nil, false
	}
	if r.ContentLength > s.maxBody {
		return tooLarge()
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes):
		return tooLarge()
	case err != nil:
		writeError(w, http.StatusBadRequest, iterable.CodeBadJSONBody,
			"Failed to read request body: "+err.Error(), nil)
		return nil, false
	}
	return data, true
}

// track applies the per-event checks and stores the accepted events. A
// field type mismatch rejects the whole request with 400 and stores
// nothing, not even the users that it would create.
func (s *Server) track(p *project, events []trackEvent) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()

	registry := newTypeRegistry(p.fieldTypes, s.dates)
	response, accepted := classify(p, events, registry)
	if len(registry.mismatches) > 0 {
		msg := fmt.Sprintf("Project %d: the request has field types that differ from "+
			"the types already set in the project", p.number)
		return http.StatusBadRequest, errorBody{
			Msg:    msg,
			Code:   iterable.CodeRequestFieldsTypesMismatched,
			Params: map[string]any{"validationErrors": registry.mismatches},
		}
	}

	registry.commit()
	now := time.Now()
	for _, a := range accepted {
		if a.create {
			p.addUser(a.user)
		}
		if !s.discard {
			p.store(s.storedEvent(a, now))
		}
	}
	response.SuccessCount = len(accepted)
	response.FailCount = len(events) - len(accepted)
	response.CreatedFields = registry.createdFields()
	response.InvalidEmails = response.FailedUpdates.InvalidEmails
	// NOTE: Iterable's spec describes the deprecated top-level invalidUserIds
	// as "not found" users. The simulator mirrors the malformed ones.
	response.InvalidUserIDs = response.FailedUpdates.InvalidUserIDs
	return http.StatusOK, response
}

// classify sorts events into failures, recorded in the returned response,
// and accepted events, whose field types it checks against registry. It
// changes neither p nor the stored types.
func classify(
	p *project, events []trackEvent, registry *typeRegistry,
) (*bulkResponse, []acceptedEvent) {
	response := newBulkResponse()
	pending := newPendingUsers()
	disallowed := make(map[string]bool)
	var accepted []acceptedEvent
	for _, e := range events {
		if p.disallowed[e.EventName] {
			if !disallowed[e.EventName] {
				disallowed[e.EventName] = true
				response.DisallowedEventNames = append(response.DisallowedEventNames, e.EventName)
			}
			continue
		}
		id := p.identify(e, pending)
		if id.fail != failNone {
			response.addFailure(id.fail, id.value)
			continue
		}
		registry.check(e.EventName, "", e.DataFields)
		accepted = append(accepted, acceptedEvent{event: e, user: id.user, create: id.create})
	}
	return response, accepted
}

// storedEvent builds the record of an accepted event received at now.
// Server.mu must be held because it draws a generated id.
func (s *Server) storedEvent(a acceptedEvent, now time.Time) StoredEvent {
	e := a.event
	stored := StoredEvent{
		ID:         e.ID,
		EventName:  e.EventName,
		Email:      a.user.Email,
		UserID:     a.user.UserID,
		CreatedAt:  e.CreatedAt,
		DataFields: copyJSONObject(e.DataFields),
		CampaignID: e.CampaignID,
		TemplateID: e.TemplateID,
		UpdatedAt:  now,
		VisibleAt:  now.Add(s.delay),
	}
	if stored.ID == "" {
		stored.ID = fmt.Sprintf("%016x%016x", s.rng.Uint64(), s.rng.Uint64())
	}
	if !e.HasCreated {
		stored.CreatedAt = now.Unix()
	}
	if stored.Email == "" && e.HasEmail && validEmail(e.Email) {
		stored.Email = e.Email
	}
	return stored
}

// newBulkResponse returns a response with every list empty but present.
func newBulkResponse() *bulkResponse {
	return &bulkResponse{
		CreatedFields:        []string{},
		FilteredOutFields:    []string{},
		DisallowedEventNames: []string{},
		FailedUpdates: failedUpdates{
			InvalidEmails:    []string{},
			InvalidUserIDs:   []string{},
			NotFoundEmails:   []string{},
			NotFoundUserIDs:  []string{},
			ForgottenEmails:  []string{},
			ForgottenUserIDs: []string{},
		},
	}
}

// addFailure appends value to the failedUpdates list of kind.
func (b *bulkResponse) addFailure(kind failure, value string) {
	lists := map[failure]*[]string{
		failInvalidEmail:    &b.FailedUpdates.InvalidEmails,
		failInvalidUserID:   &b.FailedUpdates.InvalidUserIDs,
		failNotFoundEmail:   &b.FailedUpdates.NotFoundEmails,
		failNotFoundUserID:  &b.FailedUpdates.NotFoundUserIDs,
		failForgottenEmail:  &b.FailedUpdates.ForgottenEmails,
		failForgottenUserID: &b.FailedUpdates.ForgottenUserIDs,
	}
	list := lists[kind]
	*list = append(*list, value)
}

// statusRecorder remembers the status sent, 0 when nothing was sent.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection for Reset.
func (r *statusRecorder) Unwrap() http.ResponseWriter {
	return r.ResponseWriter
}
