package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/layover-dev/layover/internal/jsonvalid"
)

// readBatch checks the request's Content-Type and Content-Encoding, reads
// the body (decompressing gzip) within limit bytes before and after
// decompression, and returns the body once it is one JSON object.
//
// The body lives in a pooled buffer. The caller passes it to release once
// nothing reads it any more, or drops it when it cannot tell, for example
// after a Send that failed and may still hold it.
func readBatch(w http.ResponseWriter, r *http.Request, limit int64) (*bodyBuffer, error) {
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	gzipped, err := parseContentEncoding(r.Header.Values("Content-Encoding"))
	if err != nil {
		return nil, err
	}
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: Content-Length %d exceeds the limit of %d bytes",
			errBodyTooLarge, r.ContentLength, limit)
	}

	var src io.Reader = transportReader{http.MaxBytesReader(w, r.Body, limit)}
	if gzipped {
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, classifyReadError(err, limit)
		}
		defer zr.Close()
		src = zr
	}
	buf := newBodyBuffer()
	if err := buf.readAtMost(src, limit, r.ContentLength); err != nil {
		release(buf)
		return nil, err
	}
	if err := checkObject(buf.Bytes()); err != nil {
		release(buf)
		return nil, err
	}
	return buf, nil
}

// bodyBuffer holds one request body. Reusing the buffers spares the
// allocation, zeroing and collection of a body-sized slice per request,
// which pprof of the ingest benchmark showed among the handler's costs.
type bodyBuffer struct {
	bytes.Buffer
}

// maxPooledBody is the capacity above which a buffer goes back to the
// garbage collector instead of the pool, so that one large batch does not
// keep its memory for good.
const maxPooledBody = 1 << 20

var bodyPool = sync.Pool{New: func() any { return new(bodyBuffer) }}

func newBodyBuffer() *bodyBuffer {
	buf := bodyPool.Get().(*bodyBuffer)
	buf.Reset()
	return buf
}

// release returns buf to the pool. Nothing may read its bytes afterwards.
func release(buf *bodyBuffer) {
	if buf.Cap() <= maxPooledBody {
		bodyPool.Put(buf)
	}
}

// readAtMost reads src to the end and returns errBodyTooLarge once it yields
// more than limit bytes, so a gzip bomb costs at most limit bytes of memory.
func (buf *bodyBuffer) readAtMost(src io.Reader, limit, sizeHint int64) error {
	if sizeHint > 0 {
		// ReadFrom grows a buffer with less than bytes.MinRead bytes free
		// before every read, even the last one, which only finds the end.
		// The extra room spares that copy.
		buf.Grow(int(min(sizeHint, limit)) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(io.LimitReader(src, limit+1))
	if err != nil {
		return classifyReadError(err, limit)
	}
	if n > limit {
		return fmt.Errorf("%w: decompressed body exceeds the limit of %d bytes",
			errBodyTooLarge, limit)
	}
	return nil
}

// transportError marks an error from reading the request body itself, as
// opposed to an error that the gzip decoder found in its content.
type transportError struct {
	err error
}

func (e transportError) Error() string { return e.err.Error() }
func (e transportError) Unwrap() error { return e.err }

// transportReader wraps every error from the underlying reader except
// io.EOF in a transportError.
type transportReader struct {
	r io.Reader
}

func (t transportReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		err = transportError{err: err}
	}
	return n, err
}

// classifyReadError turns an error from reading or decompressing the body
// into one of the errors that statusFor maps.
func classifyReadError(err error, limit int64) error {
	var tooLarge *http.MaxBytesError
	var transport transportError
	switch {
	case errors.As(err, &tooLarge):
		return fmt.Errorf("%w: body exceeds the limit of %d bytes", errBodyTooLarge, limit)
	case errors.As(err, &transport):
		// The client stopped sending or the read deadline passed. 408 makes
		// mParticle send the batch again.
		return fmt.Errorf("%w: %v", errIncompleteBody, transport.err)
	case errors.Is(err, io.EOF):
		// gzip.NewReader returns io.EOF for an empty body.
		return fmt.Errorf("%w: Content-Encoding is gzip but the body is empty", errInvalidGzip)
	default:
		// Only the gzip decoder produces other errors: a bad header, a
		// checksum mismatch, corrupt data or a stream cut short.
		return fmt.Errorf("%w: %v", errInvalidGzip, err)
	}
}

// parseContentEncoding reports whether the body is gzip-compressed. It
// accepts no coding, "identity", and one "gzip" (or its alias "x-gzip").
func parseContentEncoding(values []string) (bool, error) {
	gzipped := false
	for _, value := range values {
		for token := range strings.SplitSeq(value, ",") {
			coding := strings.ToLower(strings.TrimSpace(token))
			switch coding {
			case "", "identity":
			case "gzip", "x-gzip":
				if gzipped {
					return false, fmt.Errorf("%w: gzip applied twice", errUnsupportedEncoding)
				}
				gzipped = true
			default:
				return false, fmt.Errorf("%w %q: send gzip or an uncompressed body",
					errUnsupportedEncoding, coding)
			}
		}
	}
	return gzipped, nil
}

// rejectedMajorTypes and rejectedTypes list media types that cannot be a
// JSON body. Other types pass, because mParticle does not document the
// Content-Type it sends and the body is checked as JSON anyway.
var (
	rejectedMajorTypes = map[string]bool{
		"multipart": true, "image": true, "audio": true, "video": true,
		"font": true, "model": true, "message": true,
	}
	rejectedTypes = map[string]bool{
		"text/html": true, "text/xml": true, "application/xml": true,
		"application/xhtml+xml": true, "application/x-www-form-urlencoded": true,
		"text/css": true, "text/csv": true, "application/pdf": true,
	}
)

// checkContentType accepts a missing Content-Type and any media type that
// could carry JSON, with or without parameters such as charset.
func checkContentType(value string) error {
	if strings.TrimSpace(value) == "" {
		return nil
	}
	mediaType, _, err := mime.ParseMediaType(value)
	if err != nil {
		// Be lenient with malformed parameters and judge the type alone.
		before, _, _ := strings.Cut(value, ";")
		mediaType = strings.ToLower(strings.TrimSpace(before))
	}
	major, minor, _ := strings.Cut(mediaType, "/")
	if rejectedMajorTypes[major] || rejectedTypes[mediaType] || strings.HasSuffix(minor, "+xml") {
		return fmt.Errorf("%w %q: send application/json", errUnsupportedType, mediaType)
	}
	return nil
}

// checkObject returns nil when body is valid JSON whose top-level value is
// an object, because one mParticle webhook body is one batch object.
func checkObject(body []byte) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return errEmptyBody
	}
	if !jsonvalid.Valid(body) {
		return errInvalidJSON
	}
	if trimmed[0] != '{' {
		return fmt.Errorf("%w: found %s", errNotObject, jsonKind(trimmed[0]))
	}
	return nil
}

// jsonKind names the kind of JSON value that starts with the byte c.
func jsonKind(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}
