package mapping

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeConfig writes a config file into a temporary folder.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mapping.json")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(cfg.Events) != len(builtinRules) {
		t.Errorf("Events = %d rules, want %d", len(cfg.Events), len(builtinRules))
	}
	if *cfg.Events["custom_event"].Enabled {
		t.Errorf("custom_event enabled by default")
	}
	if !*cfg.Events["screen_view"].Enabled {
		t.Errorf("screen_view disabled by default")
	}
}

func TestDefaultConfigReturnsCopies(t *testing.T) {
	first := DefaultConfig()
	*first.Events["screen_view"].Enabled = false
	if !*DefaultConfig().Events["screen_view"].Enabled {
		t.Errorf("changing one DefaultConfig changed the next")
	}
}

func TestNewZeroConfigMatchesDefault(t *testing.T) {
	zero := newMapper(t, Config{})
	full := newMapper(t, DefaultConfig())
	if zero.projectType != ProjectHybrid {
		t.Errorf("projectType = %q, want hybrid", zero.projectType)
	}
	if zero.userIDSource != "customer_id" {
		t.Errorf("userIDSource = %q, want customer_id", zero.userIDSource)
	}
	if zero.attributeTypes != StringAttributes {
		t.Errorf("attributeTypes = %q, want strings", zero.attributeTypes)
	}
	for key, r := range full.rules {
		z := zero.rules[key]
		if z.enabled != r.enabled {
			t.Errorf("%s: enabled %v from zero config, %v from DefaultConfig", key, z.enabled, r.enabled)
		}
		if z.name != r.name {
			t.Errorf("%s: name %q from zero config, %q from DefaultConfig", key, z.name, r.name)
		}
	}
}

func TestValidateRejectsBadValues(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // parts of the message: the field and the accepted values
	}{
		{"project type", Config{ProjectType: "team"}, []string{"project_type", `"team"`, "email, userId or hybrid"}},
		{"user id source", Config{UserIDSource: "cookie"}, []string{"user_id_source", `"cookie"`, "mpid", "customer_id", "other_id_10"}},
		{"attribute types", Config{AttributeTypes: "numbers"}, []string{"attribute_types", `"numbers"`, "strings or scalars"}},
		{"unknown event key", Config{Events: map[string]Rule{"screen_veiw": {}}}, []string{`"screen_veiw"`, "screen_view", "commerce_event.add_to_cart"}},
		{"custom event name", Config{Events: map[string]Rule{"custom_event": {Name: "Custom"}}}, []string{"events.custom_event.name", "event_name"}},
		{"blank name", Config{Events: map[string]Rule{"screen_view": {Name: "  "}}}, []string{"events.screen_view.name", "blank"}},
		{"blank attribute", Config{Events: map[string]Rule{"session_end": {ExcludeAttributes: []string{"a", ""}}}}, []string{"events.session_end.exclude_attributes[1]"}},
		{"attribute in both lists", Config{Events: map[string]Rule{"screen_view": {IncludeAttributes: []string{"tab"}, ExcludeAttributes: []string{"tab"}}}}, []string{"events.screen_view", `"tab"`, "include_attributes", "exclude_attributes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New error = %v, want ErrInvalidConfig", err)
			}
			for _, part := range tt.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %s", err, part)
				}
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Config{ProjectType: "x", AttributeTypes: "y"}.Validate()
	if err == nil {
		t.Fatal("Validate returned nil")
	}
	for _, field := range []string{"project_type", "attribute_types"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not mention %s", err, field)
		}
	}
}

func TestAcceptedUserIDSources(t *testing.T) {
	for _, source := range []string{"mpid", "customer_id", "email", "other_id_4", "mobile_number"} {
		if _, err := New(Config{UserIDSource: source}); err != nil {
			t.Errorf("user_id_source %q: %v", source, err)
		}
	}
}

func TestLoadConfigPartialRuleKeepsDefaults(t *testing.T) {
	path := writeConfig(t, `{
		"project_type": "userId",
		"events": {
			"screen_view": {"name": "Viewed Screen"},
			"custom_event": {"enabled": true, "exclude_attributes": ["secret"]}
		}
	}`)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	m := newMapper(t, cfg)
	if m.projectType != ProjectUserID {
		t.Errorf("projectType = %q", m.projectType)
	}
	screen := m.rules["screen_view"]
	if !screen.enabled {
		t.Errorf("screen_view disabled by a rule that only renames it")
	}
	if screen.name != "Viewed Screen" {
		t.Errorf("screen_view name = %q", screen.name)
	}
	if !m.rules["custom_event"].enabled {
		t.Errorf("custom_event not enabled")
	}
	if !m.rules["custom_event"].exclude["secret"] {
		t.Errorf("custom_event exclude list lost")
	}
	if m.rules["session_start"].name != "Session Start" {
		t.Errorf("session_start lost its default name")
	}
}

func TestLoadConfigRejectsUnknownKeys(t *testing.T) {
	tests := map[string]string{
		"top level":  `{"projct_type": "email"}`,
		"in a rule":  `{"events": {"screen_view": {"enabeld": false}}}`,
		"event type": `{"events": {"screen_veiw": {}}}`,
	}
	wantKey := map[string]string{"top level": "projct_type", "in a rule": "enabeld", "event type": "screen_veiw"}
	for name, text := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, text))
			if err == nil {
				t.Fatal("LoadConfig returned nil error")
			}
			if !strings.Contains(err.Error(), wantKey[name]) {
				t.Errorf("error %q does not name %s", err, wantKey[name])
			}
		})
	}
}

func TestLoadConfigRejectsBadFiles(t *testing.T) {
	tests := map[string]string{
		"wrong type":    `{"project_type": 3}`,
		"trailing data": `{"project_type": "email"} {"x": 1}`,
		"not json":      `project_type = email`,
		"empty":         ``,
		"bad value":     `{"attribute_types": "floats"}`,
	}
	for name, text := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := LoadConfig(writeConfig(t, text)); err == nil {
				t.Errorf("LoadConfig(%q) returned nil error", text)
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "absent.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error = %v, want os.ErrNotExist", err)
	}
}
