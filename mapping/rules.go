package mapping

import (
	"fmt"
	"strings"

	"github.com/layover-dev/layover/mparticle"
)

// Rule keys for commerce events. A commerce event maps by what it carries:
// its product action (one key per action), else its promotion action, else
// its product impressions.
const (
	commercePrefix       = mparticle.TypeCommerceEvent + "."
	keyOtherAction       = commercePrefix + "other_action"
	keyPromotionView     = commercePrefix + "promotion_view"
	keyPromotionClick    = commercePrefix + "promotion_click"
	keyProductImpression = commercePrefix + "impression"
)

// Reasons shared by several default rules.
const (
	reasonNative      = "mParticle's native Iterable connection already sends it"
	reasonDiagnostics = "it is app diagnostics, not user behaviour to target"
	reasonUndefined   = "mParticle does not document its fields"
)

// builtinRule is the default of one rule key. offReason is the reason the
// rule is off by default, and is empty for rules that are on.
type builtinRule struct {
	key       string
	enabled   bool
	name      string
	offReason string
}

// builtinRules lists every rule key that a Config may name, with its
// default. docs/mapping.md explains each choice.
var builtinRules = []builtinRule{
	{key: mparticle.TypeScreenView, enabled: true, name: "Screen View"},
	{key: mparticle.TypeSessionStart, enabled: true, name: "Session Start"},
	{key: mparticle.TypeSessionEnd, enabled: true, name: "Session End"},
	{key: mparticle.TypeApplicationStateTransition, enabled: true, name: "Application State Transition"},
	{key: mparticle.TypeCustomEvent, offReason: reasonNative + " with the same event id"},

	{key: commercePrefix + "purchase", name: "Purchase", offReason: reasonNative + " through trackPurchase"},
	{key: commercePrefix + "add_to_cart", enabled: true, name: "Add To Cart"},
	{key: commercePrefix + "remove_from_cart", enabled: true, name: "Remove From Cart"},
	{key: commercePrefix + "checkout", enabled: true, name: "Checkout"},
	{key: commercePrefix + "checkout_option", enabled: true, name: "Checkout Option"},
	{key: commercePrefix + "click", enabled: true, name: "Product Click"},
	{key: commercePrefix + "view_detail", enabled: true, name: "Product View"},
	{key: commercePrefix + "refund", enabled: true, name: "Refund"},
	{key: commercePrefix + "add_to_wishlist", enabled: true, name: "Add To Wishlist"},
	{key: commercePrefix + "remove_from_wish_list", enabled: true, name: "Remove From Wishlist"},
	{key: keyOtherAction, enabled: true, name: "Product Action"},
	{key: keyPromotionClick, enabled: true, name: "Promotion Click"},
	{key: keyPromotionView, name: "Promotion View",
		offReason: "promotion views fire on every render of a banner, and the click is the signal to target"},
	{key: keyProductImpression, name: "Product Impression",
		offReason: "impressions fire for every product list shown and would flood the project with events"},

	{key: mparticle.TypeUserAttributeChange, name: "User Attribute Change",
		offReason: "user attributes belong on the Iterable user profile, which users/update sets"},
	{key: mparticle.TypeUserIdentityChange, name: "User Identity Change",
		offReason: reasonNative + " as updateEmail"},
	{key: mparticle.TypeCrashReport, name: "Crash Report", offReason: reasonDiagnostics},
	{key: mparticle.TypeBreadcrumb, name: "Breadcrumb", offReason: reasonDiagnostics},
	{key: mparticle.TypeNetworkPerformance, name: "Network Performance", offReason: reasonDiagnostics},
	{key: mparticle.TypePushRegistration, name: "Push Registration",
		offReason: reasonNative + " as registerDeviceToken, and an event cannot register a token"},
	{key: mparticle.TypePushMessage, name: "Push Message",
		offReason: reasonNative + " as push receipts and opens"},
	{key: mparticle.TypePushReaction, name: "Push Reaction", offReason: reasonUndefined},
	{key: mparticle.TypeOptOut, name: "Opt Out",
		offReason: "a tracking opt-out is consent state for mParticle, and as an Iterable event it changes no subscription"},
	{key: mparticle.TypeUninstall, name: "Uninstall",
		offReason: "Layover's defaults cover the session and screen behaviour the native connection leaves out"},
	{key: mparticle.TypeFirstRun, name: "First Run",
		offReason: "Application State Transition already carries isFirstRun"},
	{key: mparticle.TypePreAttribution, name: "Pre Attribution", offReason: reasonUndefined},
	{key: mparticle.TypeProfile, name: "Profile", offReason: reasonUndefined},
	{key: mparticle.TypeValidationResult, name: "Validation Result",
		offReason: "it reports mParticle data plan checks, not user behaviour"},
}

// findBuiltinRule returns the default rule for key and whether key is known.
func findBuiltinRule(key string) (builtinRule, bool) {
	for _, r := range builtinRules {
		if r.key == key {
			return r, true
		}
	}
	return builtinRule{}, false
}

// ruleKeys returns every known rule key, for error messages.
func ruleKeys() string {
	keys := make([]string, len(builtinRules))
	for i, r := range builtinRules {
		keys[i] = r.key
	}
	return strings.Join(keys, ", ")
}

// ruleKey returns the rule key for an event. It returns "" and the reason
// when no rule applies: an unknown event type, or a commerce event with
// nothing to map.
func ruleKey(e *mparticle.Event) (key, skipReason string) {
	if e.Type == mparticle.TypeCommerceEvent {
		return commerceKey(e)
	}
	if e.Type == "" {
		return "", "the event has no event_type, so it stays stored but is not sent"
	}
	if _, ok := findBuiltinRule(e.Type); !ok || strings.HasPrefix(e.Type, commercePrefix) {
		return "", fmt.Sprintf("event type %q has no mapping, so it stays stored but is not sent", e.Type)
	}
	return e.Type, ""
}

func commerceKey(e *mparticle.Event) (key, skipReason string) {
	switch {
	case e.ProductAction != nil:
		key := commercePrefix + strings.ToLower(strings.TrimSpace(e.ProductAction.Action))
		if _, ok := findBuiltinRule(key); !ok || isCommerceKindKey(key) {
			return keyOtherAction, ""
		}
		return key, ""
	case e.PromotionAction != nil:
		switch strings.ToLower(strings.TrimSpace(e.PromotionAction.Action)) {
		case "click":
			return keyPromotionClick, ""
		case "view":
			return keyPromotionView, ""
		}
		return "", fmt.Sprintf("promotion action %q is neither view nor click", e.PromotionAction.Action)
	case len(e.ProductImpressions) > 0:
		return keyProductImpression, ""
	}
	return "", "the commerce event has no product action, promotion action or product impressions"
}

// isCommerceKindKey reports whether key is one of the commerce keys that are
// not product actions, so that an action named "impression" cannot pick them.
func isCommerceKindKey(key string) bool {
	return key == keyOtherAction || key == keyPromotionView ||
		key == keyPromotionClick || key == keyProductImpression
}
