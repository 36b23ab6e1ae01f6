package mparticle

import "encoding/json"

// Event types that mParticle documents. The schema and the Go SDK list the
// first nineteen; the TypeScript models add validation_result. A payload may
// carry any other string, which Decode keeps as it is.
const (
	TypeCustomEvent                = "custom_event"
	TypeScreenView                 = "screen_view"
	TypeSessionStart               = "session_start"
	TypeSessionEnd                 = "session_end"
	TypeCommerceEvent              = "commerce_event"
	TypeUserAttributeChange        = "user_attribute_change"
	TypeUserIdentityChange         = "user_identity_change"
	TypeApplicationStateTransition = "application_state_transition"
	TypeCrashReport                = "crash_report"
	TypeBreadcrumb                 = "breadcrumb"
	TypeOptOut                     = "opt_out"
	TypePushRegistration           = "push_registration"
	TypePushMessage                = "push_message"
	TypeNetworkPerformance         = "network_performance"
	TypeUninstall                  = "uninstall"
	TypeFirstRun                   = "first_run"
	TypePreAttribution             = "pre_attribution"
	TypeProfile                    = "profile"
	TypePushReaction               = "push_reaction"
	TypeValidationResult           = "validation_result"
)

// Event is one element of a batch's events array. Type is event_type as
// sent, and Data is the raw data object, kept byte for byte. The other
// fields are decoded from Data and stay zero when absent or null.
type Event struct {
	Type string
	Data json.RawMessage

	EventID         Int64 // set by mParticle's server, new on each ingestion
	SourceMessageID string
	SessionID       Int64
	SessionUUID     string
	// TimestampMs is the event time in Unix milliseconds, from the device
	// clock.
	TimestampMs      Int64
	CustomAttributes map[string]any // values keep their JSON type; numbers are json.Number

	EventName       string // custom_event; some screen_view payloads use it too
	CustomEventType string // custom_event: navigation, location, search, media, …
	ScreenName      string // screen_view and commerce_event

	SessionDurationMs Int64 // session_end

	ApplicationTransitionType string // application_state_transition
	IsFirstRun                *bool  // application_state_transition; nil when absent
	IsUpgrade                 *bool  // application_state_transition; nil when absent

	ProductAction      *ProductAction   // commerce_event; nil when absent
	PromotionAction    *PromotionAction // commerce_event; nil when absent
	ProductImpressions []ProductImpression
	CurrencyCode       string // commerce_event
}

// ProductAction is a commerce event's product_action.
type ProductAction struct {
	// Action is add_to_cart, remove_from_cart, checkout, checkout_option,
	// click, view_detail, purchase, refund, add_to_wishlist or
	// remove_from_wish_list, or any other string a sender uses.
	Action        string
	TransactionID string
	TotalAmount   json.Number // "" when absent or not a number
	CurrencyCode  string      // rarely here; mParticle puts it on the event
	Products      []Product
}

// Product is one product of a product action or impression.
type Product struct {
	ID       string
	Name     string
	Price    json.Number // "" when absent or not a number
	Quantity json.Number // "" when absent or not a number
}

// PromotionAction is a commerce event's promotion_action.
type PromotionAction struct {
	Action     string // "view" or "click"
	Promotions []Promotion
}

// Promotion is one promotion of a promotion action.
type Promotion struct {
	ID       string
	Name     string
	Creative string
	Position string
}

// ProductImpression is one list of products shown to the user.
type ProductImpression struct {
	List     string // product_impression_list, such as "search results"
	Products []Product
}

// parseEvent decodes one element of events. An element that is not an
// object gives an Event with an empty Type, which mapping skips as unknown.
func parseEvent(envelope object) Event {
	data := envelope.object("data")
	e := Event{
		Type:              envelope.text("event_type"),
		EventID:           data.int64("event_id"),
		SourceMessageID:   data.text("source_message_id"),
		SessionID:         data.int64("session_id"),
		SessionUUID:       data.text("session_uuid"),
		TimestampMs:       data.int64("timestamp_unixtime_ms"),
		CustomAttributes:  data.attributes("custom_attributes"),
		EventName:         data.text("event_name"),
		CustomEventType:   data.text("custom_event_type"),
		ScreenName:        data.text("screen_name"),
		SessionDurationMs: data.int64("session_duration_ms"),

		ApplicationTransitionType: data.text("application_transition_type"),
		IsFirstRun:                data.boolean("is_first_run"),
		IsUpgrade:                 data.boolean("is_upgrade"),

		ProductAction:      parseProductAction(data.object("product_action")),
		PromotionAction:    parsePromotionAction(data.object("promotion_action")),
		ProductImpressions: parseImpressions(data.objects("product_impressions")),
		CurrencyCode:       data.text("currency_code"),
	}
	if rawData := trimJSONSpace(envelope.get("data")); len(rawData) > 0 && string(rawData) != "null" {
		e.Data = rawData
	}
	return e
}

func parseProductAction(o object) *ProductAction {
	if !o.ok() {
		return nil
	}
	return &ProductAction{
		Action:        o.text("action"),
		TransactionID: o.text("transaction_id"),
		TotalAmount:   o.number("total_amount"),
		CurrencyCode:  o.text("currency_code"),
		Products:      parseProducts(o.objects("products")),
	}
}

func parsePromotionAction(o object) *PromotionAction {
	if !o.ok() {
		return nil
	}
	action := &PromotionAction{Action: o.text("action")}
	for _, p := range o.objects("promotions") {
		if !p.ok() {
			continue
		}
		action.Promotions = append(action.Promotions, Promotion{
			ID:       p.text("id"),
			Name:     p.text("name"),
			Creative: p.text("creative"),
			Position: p.text("position"),
		})
	}
	return action
}

func parseImpressions(elements []object) []ProductImpression {
	var impressions []ProductImpression
	for _, o := range elements {
		if !o.ok() {
			continue
		}
		impressions = append(impressions, ProductImpression{
			List:     o.text("product_impression_list"),
			Products: parseProducts(o.objects("products")),
		})
	}
	return impressions
}

func parseProducts(elements []object) []Product {
	var products []Product
	for _, o := range elements {
		if !o.ok() {
			continue
		}
		products = append(products, Product{
			ID:       o.text("id"),
			Name:     o.text("name"),
			Price:    o.number("price"),
			Quantity: o.number("quantity"),
		})
	}
	return products
}
