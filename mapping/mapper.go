package mapping

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/mparticle"
)

// Outcome is the forwarder's action for one mapped event.
type Outcome int

// Outcomes of Map. The zero value is not an outcome, so a Result left unset
// cannot pass for a forwarded one.
const (
	// Forward means Result.Event is ready to send.
	Forward Outcome = iota + 1
	// Skip means the event is deliberately not sent: its type is off in the
	// config, unknown, or the batch came from Iterable's own feed.
	Skip
	// Reject means the event can never be delivered as it is, such as an
	// event without a usable identity. Result.Reason gives the cause.
	Reject
)

// String returns "forward", "skip" or "reject".
func (o Outcome) String() string {
	switch o {
	case Forward:
		return "forward"
	case Skip:
		return "skip"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is the outcome for one event of a batch.
type Result struct {
	Index     int    // position of the event in the batch's events array
	EventType string // event_type as sent
	Outcome   Outcome
	// Event is the Iterable event for Forward, and as much of it as could be
	// built for Reject. It is empty for Skip.
	Event  iterable.Event
	Reason string // cause of a Skip or Reject, in plain words
}

// Mapper turns decoded mParticle batches into Iterable events. It is safe
// for concurrent use because Map does not change it.
type Mapper struct {
	projectType    ProjectType
	userIDSource   string
	attributeTypes AttributeTypes
	rules          map[string]rule
}

// rule is a Rule merged with its default.
type rule struct {
	key       string
	enabled   bool
	name      string
	include   map[string]bool // nil sends every attribute
	exclude   map[string]bool
	context   bool
	offReason string
}

// New validates cfg and returns a Mapper. Empty fields of cfg take their
// defaults. The error wraps ErrInvalidConfig and names each invalid field.
func New(cfg Config) (*Mapper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Mapper{
		projectType:    cmp.Or(cfg.ProjectType, DefaultProjectType),
		userIDSource:   cmp.Or(cfg.UserIDSource, DefaultUserIDSource),
		attributeTypes: cmp.Or(cfg.AttributeTypes, DefaultAttributeTypes),
		rules:          make(map[string]rule, len(builtinRules)),
	}
	for _, builtin := range builtinRules {
		m.rules[builtin.key] = mergeRule(builtin, cfg.Events[builtin.key])
	}
	return m, nil
}

func mergeRule(builtin builtinRule, configured Rule) rule {
	r := rule{
		key:       builtin.key,
		enabled:   builtin.enabled,
		name:      cmp.Or(configured.Name, builtin.name),
		include:   nameSet(configured.IncludeAttributes),
		exclude:   nameSet(configured.ExcludeAttributes),
		context:   true,
		offReason: fmt.Sprintf("%s is off by default because %s", builtin.key, builtin.offReason),
	}
	if configured.Enabled != nil {
		r.enabled = *configured.Enabled
	}
	if configured.IncludeContext != nil {
		r.context = *configured.IncludeContext
	}
	if builtin.enabled {
		r.offReason = fmt.Sprintf("%s is turned off by events.%s.enabled in the mapping config", builtin.key, builtin.key)
	}
	return r
}

// Map returns one Result per event of b, in order, so no event is dropped
// without a recorded outcome. It returns nil for a nil batch.
func (m *Mapper) Map(b *mparticle.Batch) []Result {
	if b == nil {
		return nil
	}
	results := make([]Result, len(b.Events))
	user := m.identify(b)
	loopReason := feedLoopReason(b.SourceInfo)
	for i := range b.Events {
		results[i] = m.mapEvent(b, i, user, loopReason)
	}
	return results
}

func (m *Mapper) mapEvent(b *mparticle.Batch, index int, u user, loopReason string) Result {
	e := &b.Events[index]
	result := Result{Index: index, EventType: e.Type}
	if loopReason != "" {
		return result.skip(loopReason)
	}
	key, skipReason := ruleKey(e)
	if key == "" {
		return result.skip(skipReason)
	}
	r := m.rules[key]
	if !r.enabled {
		return result.skip(r.offReason)
	}

	name, typed, rejectReason := typeFields(e, r)
	result.Event = iterable.Event{
		Email:      u.email,
		UserID:     u.userID,
		EventName:  name,
		ID:         eventID(b, e),
		CreatedAt:  createdAt(b, e),
		DataFields: m.dataFields(b, e, r, typed),
	}
	if rejectReason == "" {
		rejectReason = u.rejectReason
	}
	if rejectReason != "" {
		result.Outcome, result.Reason = Reject, rejectReason
		return result
	}
	result.Outcome = Forward
	return result
}

func (r Result) skip(reason string) Result {
	r.Outcome, r.Reason = Skip, reason
	return r
}

// feedLoopReason returns why a batch must not be forwarded when it came into
// mParticle from Iterable's feed, which brings Iterable's own email, push
// and SMS events back as custom events. It returns "" for other batches.
func feedLoopReason(source mparticle.SourceInfo) string {
	if !strings.Contains(strings.ToLower(source.Partner), "iterable") {
		return ""
	}
	return fmt.Sprintf("the batch came from Iterable's feed (source_info channel %q, partner %q), "+
		"and sending it back would duplicate Iterable's own events", source.Channel, source.Partner)
}

func nameSet(names []string) map[string]bool {
	if len(names) == 0 {
		return nil
	}
	set := make(map[string]bool, len(names))
	for _, name := range names {
		set[name] = true
	}
	return set
}
