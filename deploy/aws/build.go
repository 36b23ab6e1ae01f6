package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// mainModule is the module path of the repository that contains the
// Lambda bootstrap.
const mainModule = "github.com/layover-dev/layover"

// Names inside the function's code folder, which Lambda unpacks into
// /var/task.
const (
	bootstrapName   = "bootstrap"
	mappingName     = "mapping.json"
	lambdaTaskRoot  = "/var/task"
	bootstrapSource = "./cmd/layover-lambda"
)

// repoRoot returns the nearest folder at or above dir whose go.mod declares
// the main module.
func repoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if isMainModule(filepath.Join(d, "go.mod")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod of %s in %s or its parents: run the app inside the repository", mainModule, dir)
		}
	}
}

func isMainModule(goMod string) bool {
	f, err := os.Open(goMod)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := strings.TrimSpace(s.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == mainModule
		}
	}
	return false
}

// buildCode builds the Lambda bootstrap from the repository at root for the
// provided.al2023 runtime on arm64 into a new temporary folder, and copies
// mappingFile into it as mapping.json when it is set. Synthesis copies the
// folder into the cloud assembly, so the caller may remove it afterwards.
//
// The build is reproducible (-trimpath, no VCS stamp), so the asset hash,
// and with it the function's code, changes only when the code does.
func buildCode(root, mappingFile string) (dir string, err error) {
	dir, err = os.MkdirTemp("", "layover-lambda-code-")
	if err != nil {
		return "", fmt.Errorf("build Lambda code: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w",
		"-o", filepath.Join(dir, bootstrapName), bootstrapSource)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s for linux/arm64 in %s: %w\n%s", bootstrapSource, root, err, out)
	}
	if mappingFile != "" {
		if err := copyMapping(mappingFile, filepath.Join(dir, mappingName)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// copyMapping copies a mapping file after checking that it is JSON. The
// forwarder checks the mapping itself when it starts.
func copyMapping(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("mappingFile: %w", err)
	}
	if !json.Valid(data) {
		return fmt.Errorf("mappingFile %s: %w", src, errors.New("the file is not valid JSON"))
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return fmt.Errorf("copy mappingFile: %w", err)
	}
	return nil
}
