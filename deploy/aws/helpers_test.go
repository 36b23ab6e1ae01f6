package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// requireCDKEnv is set to 1 by scripts/test.sh, which puts Node.js 22 on
// PATH. Synthesis tests then fail instead of skipping when Node.js is
// missing or too old.
const requireCDKEnv = "LAYOVER_TEST_CDK"

// minNodeMajor is the oldest Node.js major version that the CDK runtime
// of aws-cdk-lib 2.277 supports.
const minNodeMajor = 22

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// requireNode skips the test, or fails it under scripts/test.sh, unless
// node on PATH is Node.js 22 or newer.
func requireNode(t *testing.T) {
	t.Helper()
	out, err := exec.Command("node", "--version").Output()
	reason := ""
	if err != nil {
		reason = "node is not on PATH: " + err.Error()
	} else {
		version := strings.TrimSpace(string(out))
		major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(version, "v"), ".", 2)[0])
		if major < minNodeMajor {
			reason = "node on PATH is " + version
		}
	}
	if reason == "" {
		return
	}
	if os.Getenv(requireCDKEnv) == "1" {
		t.Fatalf("CDK synthesis needs Node.js %d or newer, and %s", minNodeMajor, reason)
	}
	t.Skipf("CDK synthesis needs Node.js %d or newer, and %s; run bash scripts/test.sh, "+
		"which installs it", minNodeMajor, reason)
}

// template is a synthesized CloudFormation template.
type template struct {
	Resources map[string]resource
	Outputs   map[string]struct{ Value any }
}

type resource struct {
	Type       string
	Properties map[string]any
}

// synth synthesizes the stack with the given context values and a stub
// bootstrap, and returns its template.
func synth(t *testing.T, context map[string]any) template {
	t.Helper()
	requireNode(t)
	lookup := func(key string) any { return context[key] }
	cfg, err := ConfigFromContext(lookup)
	if err != nil {
		t.Fatalf("ConfigFromContext(%v): %v", context, err)
	}
	codeDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(codeDir, bootstrapName), []byte("stub"), 0o755); err != nil {
		t.Fatal(err)
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	stack := NewStack(app, cfg.StackName, &StackProps{Config: cfg, CodeDir: codeDir})
	return templateOf(t, *assertions.Template_FromStack(stack, nil).ToJSON())
}

func decodeJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode JSON: %v", err)
	}
	return v
}

func templateOf(t *testing.T, raw any) template {
	t.Helper()
	data, err := json.Marshal(raw)
	if err != nil {
		t.Fatalf("encode template: %v", err)
	}
	var tpl template
	if err := json.Unmarshal(data, &tpl); err != nil {
		t.Fatalf("decode template: %v", err)
	}
	return tpl
}

// ofType returns the resources of one type by logical id.
func (tpl template) ofType(typ string) map[string]resource {
	found := map[string]resource{}
	for id, r := range tpl.Resources {
		if r.Type == typ {
			found[id] = r
		}
	}
	return found
}

// one returns the only resource of a type, failing the test when there is
// not exactly one.
func (tpl template) one(t *testing.T, typ string) (string, resource) {
	t.Helper()
	found := tpl.ofType(typ)
	if len(found) != 1 {
		t.Fatalf("template has %d resources of type %s, want 1", len(found), typ)
	}
	for id, r := range found {
		return id, r
	}
	panic("unreachable")
}

// byPrefix returns the resource whose logical id starts with prefix, the
// construct id that the stack gives it.
func (tpl template) byPrefix(t *testing.T, typ, prefix string) (string, resource) {
	t.Helper()
	var ids []string
	for id := range tpl.ofType(typ) {
		if strings.HasPrefix(id, prefix) {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("template has %d resources of type %s with id prefix %s (%v), want 1", len(ids), typ, prefix, ids)
	}
	return ids[0], tpl.Resources[ids[0]]
}

// policyStatements returns the statements of every IAM policy attached to
// the role with the given logical id.
func (tpl template) policyStatements(roleID string) []map[string]any {
	var statements []map[string]any
	for _, p := range tpl.ofType("AWS::IAM::Policy") {
		if !refersTo(p.Properties["Roles"], roleID) {
			continue
		}
		doc, _ := p.Properties["PolicyDocument"].(map[string]any)
		list, _ := doc["Statement"].([]any)
		for _, s := range list {
			if m, ok := s.(map[string]any); ok {
				statements = append(statements, m)
			}
		}
	}
	return statements
}

// refersTo reports whether v contains a Ref or Fn::GetAtt of logical id.
func refersTo(v any, id string) bool {
	switch x := v.(type) {
	case map[string]any:
		if x["Ref"] == id {
			return true
		}
		if att, ok := x["Fn::GetAtt"].([]any); ok && len(att) > 0 && att[0] == id {
			return true
		}
		for _, child := range x {
			if refersTo(child, id) {
				return true
			}
		}
	case []any:
		for _, child := range x {
			if refersTo(child, id) {
				return true
			}
		}
	}
	return false
}

// actions returns a statement's Action as a list.
func actions(statement map[string]any) []string {
	switch a := statement["Action"].(type) {
	case string:
		return []string{a}
	case []any:
		var list []string
		for _, x := range a {
			s, _ := x.(string)
			list = append(list, s)
		}
		return list
	}
	return nil
}

// allows reports whether some Allow statement grants action on a resource
// that refers to id, or whose text contains id.
func allows(statements []map[string]any, action, id string) bool {
	for _, s := range statements {
		if s["Effect"] != "Allow" {
			continue
		}
		for _, a := range actions(s) {
			if a != action {
				continue
			}
			text, _ := json.Marshal(s["Resource"])
			if refersTo(s["Resource"], id) || strings.Contains(string(text), id) {
				return true
			}
		}
	}
	return false
}

// env returns a function's environment variables.
func env(r resource) map[string]any {
	e, _ := r.Properties["Environment"].(map[string]any)
	vars, _ := e["Variables"].(map[string]any)
	return vars
}

// number reads a JSON number property.
func number(t *testing.T, r resource, name string) float64 {
	t.Helper()
	n, ok := r.Properties[name].(float64)
	if !ok {
		t.Fatalf("property %s = %v, want a number", name, r.Properties[name])
	}
	return n
}

// fullMatch reports whether pattern matches all of s, as API Gateway
// applies a selection pattern to a status code.
func fullMatch(t *testing.T, pattern, s string) bool {
	t.Helper()
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		t.Fatalf("selection pattern %q: %v", pattern, err)
	}
	return re.MatchString(s)
}
