package iterabletest

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// ProjectType is the user identifier scheme of an Iterable project.
type ProjectType string

// Project types. They decide which identifier an event is matched by and
// whether tracking an event for an unknown user creates that user.
const (
	// EmailBased projects identify users by email. Tracking an event never
	// creates a user, so unknown users end in notFoundEmails or
	// notFoundUserIds.
	EmailBased ProjectType = "email"
	// UserIDBased projects identify users by userId and create unknown
	// userIds on track. An event with only an email must match a known user.
	UserIDBased ProjectType = "userId"
	// Hybrid projects accept either identifier and create unknown users on
	// track. The simulator matches by userId when an event has both.
	Hybrid ProjectType = "hybrid"
)

// Project is the configuration of one simulated Iterable project.
type Project struct {
	// APIKey authenticates requests for this project. Required and unique.
	APIKey string
	// Type is the project type. Default Hybrid.
	Type ProjectType
	// Users exist before the first request. Email-based projects need them,
	// because tracking does not create users there.
	Users []User
	// Forgotten are users deleted on request under GDPR. Their events fail
	// with forgottenEmails or forgottenUserIds.
	Forgotten []User
	// DisallowedEventNames are event names the project rejects, as when
	// "Allow New Custom Events" is off or the event was discarded.
	DisallowedEventNames []string
}

// User is a user profile, identified by Email, UserID or both.
type User struct {
	Email  string
	UserID string
}

// project is the state of one simulated project. Server.mu guards it.
type project struct {
	number      int
	key         string
	typ         ProjectType
	revoked     bool
	byEmail     map[string]*User
	byUserID    map[string]*User
	forgotEmail map[string]bool
	forgotUser  map[string]bool
	disallowed  map[string]bool
	fieldTypes  map[string]fieldType
	events      []StoredEvent
	eventIndex  map[string]int
}

// StoredEvent is an event as the simulator stored it.
type StoredEvent struct {
	ID         string
	EventName  string
	Email      string
	UserID     string
	CreatedAt  int64 // Unix seconds, the receive time when the request had none
	DataFields map[string]any
	CampaignID int64
	TemplateID int64
	// UpdatedAt is when the latest request with this event's id arrived.
	UpdatedAt time.Time
	// VisibleAt is when the GET endpoints start returning the event.
	VisibleAt time.Time
}

// errUnknownProject is returned by setters given a key no project has.
var errUnknownProject = errors.New("iterabletest: no project has that API key")

// AddProject adds a project at runtime. It returns an error when the key is
// empty or already used, or the type is unknown.
func (s *Server) AddProject(p Project) error {
	if p.APIKey == "" {
		return errors.New("iterabletest: add project: missing APIKey")
	}
	if p.Type == "" {
		p.Type = Hybrid
	}
	if p.Type != EmailBased && p.Type != UserIDBased && p.Type != Hybrid {
		return fmt.Errorf("iterabletest: add project: unknown type %q, expected %q, %q or %q",
			p.Type, EmailBased, UserIDBased, Hybrid)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byKey[p.APIKey]; ok {
		return errors.New("iterabletest: add project: API key already used by another project")
	}
	proj := &project{
		number:      len(s.projects) + 1,
		key:         p.APIKey,
		typ:         p.Type,
		byEmail:     make(map[string]*User),
		byUserID:    make(map[string]*User),
		forgotEmail: make(map[string]bool),
		forgotUser:  make(map[string]bool),
		disallowed:  make(map[string]bool),
		fieldTypes:  make(map[string]fieldType),
		eventIndex:  make(map[string]int),
	}
	for _, u := range p.Users {
		proj.addUser(u)
	}
	for _, u := range p.Forgotten {
		proj.forget(u)
	}
	for _, name := range p.DisallowedEventNames {
		proj.disallowed[name] = true
	}
	s.projects = append(s.projects, proj)
	s.byKey[p.APIKey] = proj
	return nil
}

// project returns the project of key, revoked or not, or nil.
func (s *Server) project(key string) *project {
	return s.byKey[key]
}

// withProject runs fn on the project of key under the server lock.
func (s *Server) withProject(key string, fn func(p *project)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.project(key)
	if p == nil {
		return errUnknownProject
	}
	fn(p)
	return nil
}

// RevokeKey makes every later request with key fail with 401 BadApiKey.
// The project's stored events stay readable through Events.
func (s *Server) RevokeKey(key string) error {
	return s.withProject(key, func(p *project) { p.revoked = true })
}

// AddUser creates or updates a user profile in the project of key, as
// users/update would. Email-based projects need this before tracking.
func (s *Server) AddUser(key string, u User) error {
	if u.Email == "" && u.UserID == "" {
		return errors.New("iterabletest: add user: missing email and userId")
	}
	return s.withProject(key, func(p *project) { p.addUser(u) })
}

// ForgetUser deletes a user and their events under GDPR. Later events for
// the user's email or userId fail with forgottenEmails or forgottenUserIds.
func (s *Server) ForgetUser(key string, u User) error {
	if u.Email == "" && u.UserID == "" {
		return errors.New("iterabletest: forget user: missing email and userId")
	}
	return s.withProject(key, func(p *project) { p.forget(u) })
}

// DisallowEventName makes the project of key reject events named name.
func (s *Server) DisallowEventName(key, name string) error {
	return s.withProject(key, func(p *project) { p.disallowed[name] = true })
}

// addUser stores u, merging it with the profile that has its userId or
// email.
func (p *project) addUser(u User) {
	existing := p.byUserID[u.UserID]
	if existing == nil {
		existing = p.byEmail[u.Email]
	}
	if existing == nil {
		existing = &User{}
	}
	if u.Email != "" {
		existing.Email = u.Email
		p.byEmail[u.Email] = existing
	}
	if u.UserID != "" {
		existing.UserID = u.UserID
		p.byUserID[u.UserID] = existing
	}
}

// forget deletes the profile matching u and that profile's events, and
// blocks both of its identifiers.
func (p *project) forget(u User) {
	for _, found := range []*User{p.byEmail[u.Email], p.byUserID[u.UserID], &u} {
		if found == nil {
			continue
		}
		if found.Email != "" {
			p.forgotEmail[found.Email] = true
			delete(p.byEmail, found.Email)
		}
		if found.UserID != "" {
			p.forgotUser[found.UserID] = true
			delete(p.byUserID, found.UserID)
		}
	}
	p.events = slices.DeleteFunc(p.events, func(e StoredEvent) bool {
		return (e.Email != "" && p.forgotEmail[e.Email]) || (e.UserID != "" && p.forgotUser[e.UserID])
	})
	p.reindex()
}

// reindex rebuilds the id index after events were removed.
func (p *project) reindex() {
	clear(p.eventIndex)
	for i, e := range p.events {
		p.eventIndex[e.ID] = i
	}
}

// store inserts e, or replaces the stored event with the same id.
func (p *project) store(e StoredEvent) {
	if i, ok := p.eventIndex[e.ID]; ok {
		p.events[i] = e
		return
	}
	p.eventIndex[e.ID] = len(p.events)
	p.events = append(p.events, e)
}
