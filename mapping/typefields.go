package mapping

import (
	"strings"

	"github.com/layover-dev/layover/mparticle"
)

// typeFields returns the Iterable event name and the fields that belong to
// the event's type. Each field has one fixed type. It returns a reject
// reason when the event cannot get a name.
func typeFields(e *mparticle.Event, r rule) (name string, fields map[string]any, rejectReason string) {
	fields = make(map[string]any)
	switch r.key {
	case mparticle.TypeCustomEvent:
		if strings.TrimSpace(e.EventName) == "" {
			return "", nil, "the custom event has no event_name, and Iterable needs an event name"
		}
		return e.EventName, nil, ""
	case mparticle.TypeScreenView:
		setText(fields, "screenName", firstNonBlank(e.ScreenName, e.EventName))
	case mparticle.TypeSessionEnd:
		if e.SessionDurationMs.Valid {
			fields["sessionDurationMs"] = e.SessionDurationMs.Value
		}
	case mparticle.TypeApplicationStateTransition:
		setText(fields, "transitionType", e.ApplicationTransitionType)
		setFlag(fields, "isFirstRun", e.IsFirstRun)
		setFlag(fields, "isUpgrade", e.IsUpgrade)
	case keyPromotionClick, keyPromotionView:
		addPromotionFields(fields, e.PromotionAction)
	case keyProductImpression:
		addImpressionFields(fields, e.ProductImpressions)
	default:
		if strings.HasPrefix(r.key, commercePrefix) {
			addProductActionFields(fields, e)
		}
	}
	return r.name, fields, ""
}

// addProductActionFields adds action, transactionId, totalAmount (double),
// currencyCode, productIds, productNames and products. Each product is an
// object with id and name (strings) and price and quantity (doubles).
func addProductActionFields(fields map[string]any, e *mparticle.Event) {
	action := e.ProductAction
	setText(fields, "action", action.Action)
	setText(fields, "transactionId", action.TransactionID)
	if total, ok := doubleValue(action.TotalAmount); ok {
		fields["totalAmount"] = total
	}
	setText(fields, "currencyCode", firstNonBlank(action.CurrencyCode, e.CurrencyCode))
	addProductFields(fields, action.Products)

	var products []map[string]any
	for _, p := range action.Products {
		product := make(map[string]any)
		setText(product, "id", p.ID)
		setText(product, "name", p.Name)
		if price, ok := doubleValue(p.Price); ok {
			product["price"] = price
		}
		if quantity, ok := doubleValue(p.Quantity); ok {
			product["quantity"] = quantity
		}
		if len(product) > 0 {
			products = append(products, product)
		}
	}
	if len(products) > 0 {
		fields["products"] = products
	}
}

// addPromotionFields adds action, promotionIds and promotionNames.
func addPromotionFields(fields map[string]any, promotion *mparticle.PromotionAction) {
	setText(fields, "action", promotion.Action)
	var ids, names []string
	for _, p := range promotion.Promotions {
		ids = appendNonBlank(ids, p.ID)
		names = appendNonBlank(names, p.Name)
	}
	setList(fields, "promotionIds", ids)
	setList(fields, "promotionNames", names)
}

// addImpressionFields adds impressionLists, productIds and productNames.
func addImpressionFields(fields map[string]any, impressions []mparticle.ProductImpression) {
	var lists []string
	var products []mparticle.Product
	for _, impression := range impressions {
		lists = appendNonBlank(lists, impression.List)
		products = append(products, impression.Products...)
	}
	setList(fields, "impressionLists", lists)
	addProductFields(fields, products)
}

// addProductFields adds productIds and productNames, the lists a marketer
// filters on, leaving out blank ids and names.
func addProductFields(fields map[string]any, products []mparticle.Product) {
	var ids, names []string
	for _, p := range products {
		ids = appendNonBlank(ids, p.ID)
		names = appendNonBlank(names, p.Name)
	}
	setList(fields, "productIds", ids)
	setList(fields, "productNames", names)
}

// setList sets a list of strings unless it is empty, because an empty JSON
// array carries no element type for Iterable to record.
func setList(fields map[string]any, name string, values []string) {
	if len(values) > 0 {
		fields[name] = values
	}
}

func setFlag(fields map[string]any, name string, value *bool) {
	if value != nil {
		fields[name] = *value
	}
}

func appendNonBlank(list []string, value string) []string {
	if strings.TrimSpace(value) == "" {
		return list
	}
	return append(list, value)
}

func firstNonBlank(values ...string) string {
	for _, v := range values {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}
