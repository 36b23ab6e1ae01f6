package forward

import "github.com/layover-dev/layover/iterable"

// failureIndex looks up the failure lists of one trackBulk response.
type failureIndex struct {
	names  map[string]bool
	emails map[string]string // email -> reason
	users  map[string]string // userId -> reason
}

func newFailureIndex(resp *iterable.BulkTrackResponse) failureIndex {
	idx := failureIndex{names: map[string]bool{}, emails: map[string]string{}, users: map[string]string{}}
	for _, name := range resp.DisallowedEventNames {
		idx.names[name] = true
	}
	f := resp.FailedUpdates
	add(idx.emails, f.InvalidEmails, "Iterable rejected the email address as invalid (invalidEmails)")
	add(idx.emails, resp.InvalidEmails, "Iterable rejected the email address as invalid (invalidEmails)")
	add(idx.emails, f.NotFoundEmails, "no Iterable user has this email, and an email-based project does not create users from events (notFoundEmails)")
	add(idx.emails, f.ForgottenEmails, "the user was forgotten under GDPR in Iterable (forgottenEmails)")
	add(idx.users, f.InvalidUserIDs, "Iterable rejected the userId as malformed (invalidUserIds)")
	add(idx.users, resp.InvalidUserIDs, "Iterable rejected the userId (invalidUserIds)")
	add(idx.users, f.NotFoundUserIDs, "no Iterable user has this userId (notFoundUserIds)")
	add(idx.users, f.ForgottenUserIDs, "the user was forgotten under GDPR in Iterable (forgottenUserIds)")
	return idx
}

func add(m map[string]string, keys []string, reason string) {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			m[k] = reason
		}
	}
}

// reason returns why Iterable failed ev, or "" when it did not.
func (idx failureIndex) reason(ev iterable.Event) string {
	if idx.names[ev.EventName] {
		return "the Iterable project does not allow the event name " + quote(ev.EventName) + " (disallowedEventNames)"
	}
	if ev.Email != "" {
		if reason, ok := idx.emails[ev.Email]; ok {
			return reason
		}
	}
	if ev.UserID != "" {
		if reason, ok := idx.users[ev.UserID]; ok {
			return reason
		}
	}
	return ""
}

func quote(s string) string { return "\"" + s + "\"" }
