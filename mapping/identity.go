package mapping

import (
	"fmt"
	"strings"

	"github.com/layover-dev/layover/mparticle"
)

// maxUserIDLength is Iterable's limit on userId, in characters. A userId
// must also be printable ASCII without a trailing space.
const maxUserIDLength = 52

// user is the Iterable identity of a batch. rejectReason is set when the
// batch's events cannot be delivered under the project type.
type user struct {
	email        string
	userID       string
	rejectReason string
}

// identify picks email and userId for a batch and checks them. A blank
// identity counts as missing. A present but malformed one rejects the
// events instead of being dropped, so the problem shows in the outcome
// rather than attaching events to a different profile.
func (m *Mapper) identify(b *mparticle.Batch) user {
	u := user{email: b.Identity("email"), userID: m.userIDFrom(b)}
	if u.email != "" {
		if problem := emailProblem(u.email); problem != "" {
			u.rejectReason = "the email identity is invalid: " + problem
			return u
		}
	}
	if u.userID != "" {
		if problem := userIDProblem(u.userID); problem != "" {
			u.rejectReason = fmt.Sprintf("the userId from %s is invalid: %s", m.userIDSource, problem)
			return u
		}
	}
	u.rejectReason = m.missingIdentity(u)
	return u
}

func (m *Mapper) userIDFrom(b *mparticle.Batch) string {
	if m.userIDSource == mpidSource {
		return b.MPID.String()
	}
	return b.Identity(m.userIDSource)
}

// missingIdentity returns why the project type cannot accept u, or "".
func (m *Mapper) missingIdentity(u user) string {
	switch m.projectType {
	case ProjectEmail:
		if u.email == "" {
			return "the batch has no email identity, and an email-based Iterable project needs one"
		}
	case ProjectUserID:
		if u.userID == "" {
			return fmt.Sprintf("the batch has no %s for userId, and a userId-based Iterable project needs one",
				m.userIDSource)
		}
	default:
		if u.email == "" && u.userID == "" {
			return fmt.Sprintf("the batch has neither an email identity nor a %s for userId, "+
				"so Iterable cannot tell whose event it is", m.userIDSource)
		}
	}
	return ""
}

// emailProblem returns why Iterable would not accept email, or "". The
// message leaves the address out, so it is safe to log.
func emailProblem(email string) string {
	local, domain, found := strings.Cut(email, "@")
	switch {
	case !found:
		return "it has no @"
	case strings.Contains(domain, "@"):
		return "it has more than one @"
	case local == "" || domain == "":
		return "it has nothing before or after the @"
	}
	return ""
}

// userIDProblem returns why Iterable would not accept userID, or "". The
// message leaves the value out, so it is safe to log.
func userIDProblem(userID string) string {
	for i := 0; i < len(userID); i++ {
		if c := userID[i]; c < 0x20 || c > 0x7e {
			return "it contains a character that is not printable ASCII"
		}
	}
	switch {
	case len(userID) > maxUserIDLength:
		return fmt.Sprintf("it is %d characters long, and Iterable accepts at most %d", len(userID), maxUserIDLength)
	case strings.HasSuffix(userID, " "):
		return "it ends with a space"
	}
	return ""
}
