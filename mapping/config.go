package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/layover-dev/layover/mparticle"
)

// ErrInvalidConfig is wrapped by every error that Config.Validate, LoadConfig
// and New return for a config value they reject.
var ErrInvalidConfig = errors.New("invalid mapping config")

// ProjectType is the kind of Iterable project, which decides the identity
// each event needs.
type ProjectType string

// Project types. Iterable sets the type when a project is created.
const (
	ProjectEmail  ProjectType = "email"  // every event needs an email
	ProjectUserID ProjectType = "userId" // every event needs a userId
	ProjectHybrid ProjectType = "hybrid" // every event needs an email, a userId or both
)

// AttributeTypes is the policy that turns custom attribute values into
// dataFields values.
type AttributeTypes string

// Attribute type policies. Iterable fixes a field's type with the first
// value it receives and then rejects the whole trackBulk request on a mismatch,
// so the policy must give one field the same type in every event.
const (
	// StringAttributes sends every value as a string: numbers keep their
	// exact decimal text, booleans become "true" or "false", lists and
	// objects become JSON text, and nulls are left out.
	StringAttributes AttributeTypes = "strings"
	// ScalarAttributes turns "true" and "false" into booleans, whole numbers
	// in the 32-bit range into integers and numbers with a fraction into
	// doubles, as the native connection's "Coerce Strings to Scalars" does.
	// A field that is numeric in one event and text in another then fails
	// the whole request it is sent in.
	ScalarAttributes AttributeTypes = "scalars"
)

// Defaults for a Config whose fields are empty.
const (
	DefaultProjectType    = ProjectHybrid
	DefaultUserIDSource   = "customer_id"
	DefaultAttributeTypes = StringAttributes
)

// mpidSource is the UserIDSource that takes userId from the batch's mpid.
const mpidSource = "mpid"

// identityTypes are the user identity types that mParticle documents.
var identityTypes = []string{
	"customer_id", "email", "other", "other_id_2", "other_id_3", "other_id_4",
	"other_id_5", "other_id_6", "other_id_7", "other_id_8", "other_id_9",
	"other_id_10", "mobile_number", "phone_number_2", "phone_number_3",
	"facebook", "twitter", "google", "microsoft", "yahoo", "alias",
	"facebook_custom_audience_id",
}

// Config controls how mParticle events become Iterable events. The zero
// value means every documented default, and a JSON file read by LoadConfig
// needs to name only what it changes.
type Config struct {
	// ProjectType is the Iterable project's type; the default is hybrid.
	ProjectType ProjectType `json:"project_type,omitempty"`
	// UserIDSource is the identity type that gives userId, or "mpid"; the
	// default is customer_id.
	UserIDSource string `json:"user_id_source,omitempty"`
	// AttributeTypes is "strings" (the default) or "scalars".
	AttributeTypes AttributeTypes `json:"attribute_types,omitempty"`
	// Events holds a rule per event type, or per commerce kind such as
	// "commerce_event.add_to_cart". A key left out keeps its default rule.
	Events map[string]Rule `json:"events,omitempty"`
}

// Rule configures one event type. Empty fields keep the type's default.
type Rule struct {
	Enabled *bool  `json:"enabled,omitempty"`
	Name    string `json:"name,omitempty"` // Iterable eventName; custom events keep their own
	// IncludeAttributes, when not empty, lists the only custom attributes
	// sent. ExcludeAttributes lists attributes never sent.
	IncludeAttributes []string `json:"include_attributes,omitempty"`
	ExcludeAttributes []string `json:"exclude_attributes,omitempty"`
	// IncludeContext adds platform, appVersion, appBuild, environment,
	// sessionId and mpid to dataFields; the default is true.
	IncludeContext *bool `json:"include_context,omitempty"`
}

// DefaultConfig returns the default config with every rule written out, so
// it can be printed or saved as a starting point.
func DefaultConfig() Config {
	cfg := Config{
		ProjectType:    DefaultProjectType,
		UserIDSource:   DefaultUserIDSource,
		AttributeTypes: DefaultAttributeTypes,
		Events:         make(map[string]Rule, len(builtinRules)),
	}
	for _, r := range builtinRules {
		cfg.Events[r.key] = Rule{
			Enabled:        boolPointer(r.enabled),
			Name:           r.name,
			IncludeContext: boolPointer(true),
		}
	}
	return cfg
}

// LoadConfig reads a JSON config file over DefaultConfig and validates it.
// An unknown key, a value of the wrong type or trailing data is an error
// that names the key or position.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("load mapping config: %w", err)
	}
	cfg := DefaultConfig()
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("load mapping config %s: %w", path, err)
	}
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("load mapping config %s: unexpected data after the JSON object", path)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("load mapping config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks every field and returns all problems joined, each
// wrapping ErrInvalidConfig and naming the field and the accepted values.
func (c Config) Validate() error {
	var problems []error
	switch c.ProjectType {
	case "", ProjectEmail, ProjectUserID, ProjectHybrid:
	default:
		problems = append(problems, invalid("project_type is %q; use email, userId or hybrid", c.ProjectType))
	}
	if c.UserIDSource != "" && c.UserIDSource != mpidSource && !slices.Contains(identityTypes, c.UserIDSource) {
		problems = append(problems, invalid("user_id_source is %q; use mpid or an identity type: %s",
			c.UserIDSource, strings.Join(identityTypes, ", ")))
	}
	switch c.AttributeTypes {
	case "", StringAttributes, ScalarAttributes:
	default:
		problems = append(problems, invalid("attribute_types is %q; use strings or scalars", c.AttributeTypes))
	}
	for _, key := range slices.Sorted(maps.Keys(c.Events)) {
		problems = append(problems, validateRule(key, c.Events[key])...)
	}
	return errors.Join(problems...)
}

func validateRule(key string, rule Rule) []error {
	if _, ok := findBuiltinRule(key); !ok {
		return []error{invalid("events has unknown key %q; use one of: %s", key, ruleKeys())}
	}
	var problems []error
	switch {
	case key == mparticle.TypeCustomEvent && rule.Name != "":
		problems = append(problems, invalid("events.custom_event.name is %q; leave it out, "+
			"because custom events keep their own event_name", rule.Name))
	case rule.Name != "" && strings.TrimSpace(rule.Name) == "":
		problems = append(problems, invalid("events.%s.name is blank; set a name or leave it out for the default", key))
	}
	problems = append(problems, blankNames(key, "include_attributes", rule.IncludeAttributes)...)
	problems = append(problems, blankNames(key, "exclude_attributes", rule.ExcludeAttributes)...)
	for _, name := range rule.IncludeAttributes {
		if slices.Contains(rule.ExcludeAttributes, name) {
			problems = append(problems, invalid("events.%s lists attribute %q in both include_attributes "+
				"and exclude_attributes; keep it in one", key, name))
		}
	}
	return problems
}

func blankNames(key, field string, names []string) []error {
	var problems []error
	for i, name := range names {
		if strings.TrimSpace(name) == "" {
			problems = append(problems, invalid("events.%s.%s[%d] is blank; list attribute names", key, field, i))
		}
	}
	return problems
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

func boolPointer(value bool) *bool {
	return &value
}
