package main

import (
	"debug/elf"
	"os"
	"path/filepath"
	"testing"
)

// TestSynthBuildsArm64Bootstrap runs the app as `go run .` does: it builds
// the real bootstrap for linux/arm64 and writes the template and the asset
// into CDK_OUTDIR.
func TestSynthBuildsArm64Bootstrap(t *testing.T) {
	requireNode(t)
	out := t.TempDir()
	t.Setenv("CDK_OUTDIR", out)
	if err := run(); err != nil {
		t.Fatalf("run: %v", err)
	}

	data, err := os.ReadFile(filepath.Join(out, DefaultStackName+".template.json"))
	if err != nil {
		t.Fatalf("read the synthesized template: %v", err)
	}
	tpl := templateOf(t, decodeJSON(t, data))
	if _, fn := tpl.byPrefix(t, "AWS::Lambda::Function", "Forwarder"); fn.Properties["Runtime"] != "provided.al2023" {
		t.Errorf("forwarder runtime = %v, want provided.al2023", fn.Properties["Runtime"])
	}

	bootstraps, err := filepath.Glob(filepath.Join(out, "asset.*", bootstrapName))
	if err != nil || len(bootstraps) != 1 {
		t.Fatalf("cloud assembly has %d bootstrap assets (%v), want 1", len(bootstraps), err)
	}
	f, err := elf.Open(bootstraps[0])
	if err != nil {
		t.Fatalf("bootstrap is not an ELF executable: %v", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("bootstrap machine = %v, want EM_AARCH64 for Lambda's arm64", f.Machine)
	}
	if f.Type != elf.ET_EXEC {
		t.Errorf("bootstrap ELF type = %v, want ET_EXEC (statically linked, CGO_ENABLED=0)", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("bootstrap needs a dynamic loader (PT_INTERP); build it with CGO_ENABLED=0")
		}
	}
}
