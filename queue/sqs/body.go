package sqs

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Message attributes that Layover sets. SQS counts each attribute's name,
// data type and value toward the maximum message size, so Layover adds
// idAttribute and enqueuedAttribute only to bodies that leave room for them.
const (
	// encodingAttribute marks a body stored in base64 because SQS rejects
	// some of its characters. Its only value is encodingBase64.
	encodingAttribute = "LayoverBodyEncoding"
	encodingBase64    = "base64"
	// idAttribute is the message id that Send made (queue.NewMessageID).
	// It stays the same when Release or Redrive sends the body again as a
	// new SQS message, and it sorts by creation time, unlike SQS ids.
	idAttribute = "LayoverMessageId"
	// enqueuedAttribute is the first enqueue time of a body that Release or
	// Redrive sent again, in milliseconds since the Unix epoch.
	enqueuedAttribute = "LayoverEnqueuedAt"

	stringType = "String"
	numberType = "Number"
)

// attributeNames are the message attributes that every receive requests.
var attributeNames = []string{encodingAttribute, idAttribute, enqueuedAttribute}

// outgoing is a webhook body in the form that SendMessage takes.
type outgoing struct {
	raw     []byte // the body as the caller stored it
	body    string // raw, or its base64 encoding when encoded is set
	encoded bool
}

// encodeBody returns raw as a message body, base64-encoded when SQS does not
// accept raw as it is or when force is set.
func encodeBody(raw []byte, force bool) outgoing {
	if !force && validBody(raw) {
		return outgoing{raw: raw, body: string(raw)}
	}
	return outgoing{raw: raw, body: base64.StdEncoding.EncodeToString(raw), encoded: true}
}

// size returns the bytes that SQS counts for the message: the body plus the
// name, data type and value of the encoding attribute when it is set.
func (o outgoing) size() int {
	if !o.encoded {
		return len(o.body)
	}
	return len(o.body) + encodingAttributeBytes
}

const encodingAttributeBytes = len(encodingAttribute) + len(stringType) + len(encodingBase64)

// encodedSize returns the size that outgoing.size returns for a body of n
// raw bytes, without encoding it.
func encodedSize(n int, encoded bool) int {
	if !encoded {
		return n
	}
	return base64.StdEncoding.EncodedLen(n) + encodingAttributeBytes
}

// attributes returns the message attributes for o with maxSize as the
// queue's maximum message size. The attributes of origin are added, id
// first, only while the message stays within maxSize.
func (o outgoing) attributes(origin origin, maxSize int) map[string]types.MessageAttributeValue {
	attrs := make(map[string]types.MessageAttributeValue, 3)
	if o.encoded {
		attrs[encodingAttribute] = stringAttribute(encodingBase64)
	}
	size := o.size() + len(idAttribute) + len(stringType) + len(origin.id)
	hasID := origin.id != "" && size <= maxSize
	if hasID {
		attrs[idAttribute] = stringAttribute(origin.id)
	}
	if hasID && !origin.enqueuedAt.IsZero() {
		value := strconv.FormatInt(origin.enqueuedAt.UnixMilli(), 10)
		size += len(enqueuedAttribute) + len(numberType) + len(value)
		if size <= maxSize {
			attrs[enqueuedAttribute] = types.MessageAttributeValue{
				DataType:    aws.String(numberType),
				StringValue: aws.String(value),
			}
		}
	}
	if len(attrs) == 0 {
		return nil
	}
	return attrs
}

func stringAttribute(value string) types.MessageAttributeValue {
	return types.MessageAttributeValue{
		DataType:    aws.String(stringType),
		StringValue: aws.String(value),
	}
}

// origin is the message id and first enqueue time of a stored body, which
// stay the same when Release or Redrive sends the body again.
type origin struct {
	id         string
	enqueuedAt time.Time
}

// messageOrigin returns the origin of a received message: the values of
// idAttribute and enqueuedAttribute when present, else its SQS message id
// and SentTimestamp.
func messageOrigin(m types.Message) origin {
	o := origin{id: aws.ToString(m.MessageId)}
	sent := m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)]
	if ms, err := strconv.ParseInt(sent, 10, 64); err == nil {
		o.enqueuedAt = time.UnixMilli(ms)
	}
	if v, ok := m.MessageAttributes[idAttribute]; ok && aws.ToString(v.StringValue) != "" {
		o.id = aws.ToString(v.StringValue)
	}
	if v, ok := m.MessageAttributes[enqueuedAttribute]; ok {
		if ms, err := strconv.ParseInt(aws.ToString(v.StringValue), 10, 64); err == nil {
			o.enqueuedAt = time.UnixMilli(ms)
		}
	}
	return o
}

// storedBody returns a received message's body in the form SendMessage
// takes, so that it can be sent again unchanged.
func storedBody(m types.Message) outgoing {
	body := aws.ToString(m.Body)
	encoded := aws.ToString(m.MessageAttributes[encodingAttribute].StringValue) == encodingBase64
	return outgoing{body: body, encoded: encoded}
}

// decodeBody returns the webhook body of a received message, decoding base64
// when the encoding attribute is set.
func decodeBody(m types.Message) ([]byte, error) {
	body := aws.ToString(m.Body)
	encoding, ok := m.MessageAttributes[encodingAttribute]
	if !ok {
		return []byte(body), nil
	}
	if value := aws.ToString(encoding.StringValue); value != encodingBase64 {
		return nil, fmt.Errorf("decode body: unknown %s %q", encodingAttribute, value)
	}
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("decode body: %w", err)
	}
	return raw, nil
}

// validBody reports whether SQS accepts b as a message body unchanged: valid
// UTF-8 of only the characters #x9 | #xA | #xD | #x20-#xD7FF |
// #xE000-#xFFFD | #x10000-#x10FFFF (AWS API reference, SendMessage).
func validBody(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		if r == 0xFFFE || r == 0xFFFF {
			return false
		}
		i += size
	}
	return true
}
