package iterabletest

import "strings"

// Limits of Iterable's user identifiers.
const (
	maxUserIDLength = 52
	maxEmailLength  = 254
)

// failure names the failedUpdates list an event lands in, or failNone.
type failure int

const (
	failNone failure = iota
	failInvalidEmail
	failInvalidUserID
	failNotFoundEmail
	failNotFoundUserID
	failForgottenEmail
	failForgottenUserID
)

// identity is the outcome of matching one event to a user.
type identity struct {
	fail   failure
	value  string // the identifier listed on failure
	user   User   // the matched or new user on success
	create bool   // true when the user does not exist yet
}

// pendingUsers are the users that earlier events of the same request
// create. They are stored only when the whole request is accepted.
type pendingUsers struct {
	byUserID map[string]User
	byEmail  map[string]User
}

func newPendingUsers() pendingUsers {
	return pendingUsers{byUserID: make(map[string]User), byEmail: make(map[string]User)}
}

// identify matches e to a user of p by the project type's rules, without
// changing p.
func (p *project) identify(e trackEvent, pending pendingUsers) identity {
	useUserID := e.HasUserID
	if p.typ == EmailBased {
		// An email-based project matches by email whenever one is sent.
		useUserID = !e.HasEmail
	}
	if useUserID {
		return p.identifyByUserID(e, pending)
	}
	return p.identifyByEmail(e, pending)
}

// identifyByUserID matches e by its userId, creating the user in
// userID-based and hybrid projects.
func (p *project) identifyByUserID(e trackEvent, pending pendingUsers) identity {
	switch {
	case !validUserID(e.UserID):
		return identity{fail: failInvalidUserID, value: e.UserID}
	case p.forgotUser[e.UserID]:
		return identity{fail: failForgottenUserID, value: e.UserID}
	}
	if u := p.byUserID[e.UserID]; u != nil {
		return identity{user: *u}
	}
	if u, ok := pending.byUserID[e.UserID]; ok {
		return identity{user: u}
	}
	if p.typ == EmailBased {
		return identity{fail: failNotFoundUserID, value: e.UserID}
	}
	// The new profile takes the event's email only when no other user has it.
	u := User{UserID: e.UserID}
	_, emailPending := pending.byEmail[e.Email]
	emailFree := p.byEmail[e.Email] == nil && !p.forgotEmail[e.Email] && !emailPending
	if e.HasEmail && validEmail(e.Email) && emailFree {
		u.Email = e.Email
		pending.byEmail[e.Email] = u
	}
	pending.byUserID[e.UserID] = u
	return identity{user: u, create: true}
}

// identifyByEmail matches e by its email, creating the user only in hybrid
// projects.
func (p *project) identifyByEmail(e trackEvent, pending pendingUsers) identity {
	switch {
	case !validEmail(e.Email):
		return identity{fail: failInvalidEmail, value: e.Email}
	case p.forgotEmail[e.Email]:
		return identity{fail: failForgottenEmail, value: e.Email}
	}
	if u := p.byEmail[e.Email]; u != nil {
		return identity{user: *u}
	}
	if u, ok := pending.byEmail[e.Email]; ok {
		return identity{user: u}
	}
	if p.typ != Hybrid {
		return identity{fail: failNotFoundEmail, value: e.Email}
	}
	u := User{Email: e.Email}
	pending.byEmail[e.Email] = u
	return identity{user: u, create: true}
}

// validUserID applies Iterable's rule for userId: 1 to 52 printable ASCII
// characters with no trailing space.
func validUserID(id string) bool {
	if id == "" || len(id) > maxUserIDLength || strings.HasSuffix(id, " ") {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// validEmail checks the shape local@domain.tld with printable ASCII and no
// spaces.
//
// NOTE: Iterable does not publish its address rules, so this check may
// accept or reject some addresses differently.
func validEmail(email string) bool {
	if len(email) > maxEmailLength {
		return false
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || len(local) > 64 || strings.Contains(domain, "@") {
		return false
	}
	for i := 0; i < len(email); i++ {
		if email[i] <= 0x20 || email[i] > 0x7e {
			return false
		}
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, label := range labels {
		if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
	}
	return true
}
