package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGuideListsEverySetting keeps docs/deploy-aws.md in step with the
// context keys.
func TestGuideListsEverySetting(t *testing.T) {
	guide, err := os.ReadFile(filepath.Join("..", "..", "docs", "deploy-aws.md"))
	if err != nil {
		t.Fatalf("read the deploy guide: %v", err)
	}
	for _, key := range contextKeys {
		if !strings.Contains(string(guide), "`"+key+"`") {
			t.Errorf("docs/deploy-aws.md does not describe the setting %s", key)
		}
	}
}
