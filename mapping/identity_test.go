package mapping

import (
	"strings"
	"testing"
)

func TestUserIDProblem(t *testing.T) {
	tests := []struct {
		userID string
		want   string // part of the problem, or "" for a valid userId
	}{
		{"cust-1", ""},
		{strings.Repeat("a", 52), ""},
		{" leading space is allowed", ""},
		{strings.Repeat("a", 53), "53 characters"},
		{"trailing ", "ends with a space"},
		{"tab\tinside", "printable ASCII"},
		{"café", "printable ASCII"},
		{"del\x7f", "printable ASCII"},
	}
	for _, tt := range tests {
		got := userIDProblem(tt.userID)
		if tt.want == "" && got != "" {
			t.Errorf("userIDProblem(%q) = %q, want valid", tt.userID, got)
		}
		if tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("userIDProblem(%q) = %q, want it to mention %q", tt.userID, got, tt.want)
		}
	}
}

func TestEmailProblem(t *testing.T) {
	tests := []struct {
		email string
		want  string
	}{
		{"a@b", ""},
		{"first.last+tag@example.co.uk", ""},
		{"no-at-sign", "no @"},
		{"two@@example.com", "more than one @"},
		{"a@b@c", "more than one @"},
		{"@example.com", "nothing before or after"},
		{"user@", "nothing before or after"},
	}
	for _, tt := range tests {
		got := emailProblem(tt.email)
		if tt.want == "" && got != "" {
			t.Errorf("emailProblem(%q) = %q, want valid", tt.email, got)
		}
		if tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("emailProblem(%q) = %q, want it to mention %q", tt.email, got, tt.want)
		}
	}
}

func TestIdentityByProjectType(t *testing.T) {
	const (
		both      = `"mpid": 7, "user_identities": {"email": "e@example.com", "customer_id": "c-7"}`
		emailOnly = `"mpid": 7, "user_identities": [{"identity_type": "email", "identity": "e@example.com"}]`
		idOnly    = `"mpid": 7, "user_identities": [{"identity_type": "customer_id", "identity": "c-7"}]`
		blanks    = `"mpid": 7, "user_identities": {"email": "  ", "customer_id": ""}`
		none      = `"mpid": 7`
	)
	tests := []struct {
		name        string
		project     ProjectType
		identities  string
		want        Outcome
		email, user string
	}{
		{"hybrid both", ProjectHybrid, both, Forward, "e@example.com", "c-7"},
		{"hybrid email", ProjectHybrid, emailOnly, Forward, "e@example.com", ""},
		{"hybrid userId", ProjectHybrid, idOnly, Forward, "", "c-7"},
		{"hybrid none", ProjectHybrid, none, Reject, "", ""},
		{"hybrid blanks", ProjectHybrid, blanks, Reject, "", ""},
		{"email project with email", ProjectEmail, emailOnly, Forward, "e@example.com", ""},
		{"email project without", ProjectEmail, idOnly, Reject, "", "c-7"},
		{"userId project with userId", ProjectUserID, both, Forward, "e@example.com", "c-7"},
		{"userId project without", ProjectUserID, emailOnly, Reject, "e@example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mapOne(t, Config{ProjectType: tt.project}, `{`+tt.identities+`, "events": [{"event_type": "session_start", "data": {}}]}`)
			wantOutcome(t, r, tt.want)
			if r.Event.Email != tt.email {
				t.Errorf("Email = %q, want %q", r.Event.Email, tt.email)
			}
			if r.Event.UserID != tt.user {
				t.Errorf("UserID = %q, want %q", r.Event.UserID, tt.user)
			}
		})
	}
}

func TestInvalidIdentityRejects(t *testing.T) {
	tests := []struct {
		name, identities, want string
	}{
		{"bad email", `{"email": "not-an-address", "customer_id": "c-1"}`, "email identity is invalid"},
		{"long userId", `{"email": "ok@example.com", "customer_id": "` + strings.Repeat("9", 60) + `"}`, "60 characters"},
		{"trailing space", `{"customer_id": "c-1 "}`, "ends with a space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mapOne(t, Config{}, `{"user_identities": `+tt.identities+`, "events": [{"event_type": "session_start", "data": {}}]}`)
			wantOutcome(t, r, Reject)
			if !strings.Contains(r.Reason, tt.want) {
				t.Errorf("Reason = %q, want it to mention %q", r.Reason, tt.want)
			}
			if strings.Contains(r.Reason, "not-an-address") {
				t.Errorf("Reason %q contains the identity value", r.Reason)
			}
		})
	}
}

func TestUserIDSources(t *testing.T) {
	const body = `{"mpid": -9000000000000000001, "user_identities": [
		{"identity_type": "customer_id", "identity": "c-1"},
		{"identity_type": "other_id_2", "identity": "o-2"}
	], "events": [{"event_type": "session_start", "data": {}}]}`
	tests := map[string]string{
		"":            "c-1",
		"customer_id": "c-1",
		"mpid":        "-9000000000000000001",
		"other_id_2":  "o-2",
		"other_id_3":  "",
	}
	for source, want := range tests {
		r := mapOne(t, Config{UserIDSource: source}, body)
		if r.Event.UserID != want {
			t.Errorf("user_id_source %q: UserID = %q, want %q", source, r.Event.UserID, want)
		}
	}
}

func TestMissingMPIDForUserID(t *testing.T) {
	r := mapOne(t, Config{UserIDSource: "mpid", ProjectType: ProjectUserID}, `{"events": [{"event_type": "session_start", "data": {}}]}`)
	wantOutcome(t, r, Reject)
	if !strings.Contains(r.Reason, "mpid") {
		t.Errorf("Reason = %q, want the source named", r.Reason)
	}
}
