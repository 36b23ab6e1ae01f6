package iterable_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/layover-dev/layover/iterable"
)

// recordBodies starts a server that responds to every trackBulk request with an
// empty success and records the request bodies.
func recordBodies(t *testing.T) (*iterable.Client, *[][]byte) {
	t.Helper()
	var bodies [][]byte
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		bodies = append(bodies, body)
		_, _ = w.Write([]byte(`{"successCount":0,"failCount":0,"failedUpdates":{}}`))
	}))
	t.Cleanup(ts.Close)
	client, err := iterable.NewClient(iterable.ClientOptions{BaseURL: ts.URL, APIKey: testKey, RequestsPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return client, &bodies
}

func TestTrackBulkJSONSendsSameBody(t *testing.T) {
	client, bodies := recordBodies(t)
	events := []iterable.Event{
		{Email: "ada@example.com", EventName: "Screen View", ID: "a-1", CreatedAt: 1764835200,
			DataFields: map[string]any{"screenName": "<Home>", "count": 3}},
		{UserID: "u-2", EventName: "Session Start", ID: "b-2"},
	}
	encoded := make([]json.RawMessage, len(events))
	for i, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		encoded[i] = data
	}
	ctx := context.Background()
	if _, err := client.TrackBulk(ctx, events); err != nil {
		t.Fatalf("TrackBulk: %v", err)
	}
	if _, err := client.TrackBulkJSON(ctx, encoded); err != nil {
		t.Fatalf("TrackBulkJSON: %v", err)
	}
	if len(*bodies) != 2 {
		t.Fatalf("server got %d requests, want 2", len(*bodies))
	}
	if !bytes.Equal((*bodies)[0], (*bodies)[1]) {
		t.Errorf("TrackBulkJSON body\n%s\ndiffers from TrackBulk body\n%s", (*bodies)[1], (*bodies)[0])
	}
}

func TestTrackBulkJSONEmpty(t *testing.T) {
	client, bodies := recordBodies(t)
	if _, err := client.TrackBulkJSON(context.Background(), nil); err != nil {
		t.Fatalf("TrackBulkJSON: %v", err)
	}
	if got := string((*bodies)[0]); got != `{"events":[]}` {
		t.Errorf("body %s, want {\"events\":[]}", got)
	}
}
