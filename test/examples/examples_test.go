// Package examples checks the configurations the project ships: every
// gokafka output in deploy/, examples/, README.md and docs/.
package examples

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gokafka/gokafka/conf"
	"github.com/gokafka/gokafka/rdk"
)

// coreKeys are the [OUTPUT] keys Fluent Bit's core reads itself for every
// output, its Go proxies included (flb_output.c), plus `processors` of the
// YAML format. Keys ending in "." are prefixes.
var coreKeys = []string{
	"name", "match", "match_regex", "alias", "log_level", "log_suppress_interval",
	"host", "port", "ipv6", "retry_limit", "workers", "storage.total_limit_size",
	"tls", "tls.", "net.", "processors",
}

// accepted reports whether key is read by the plugin (conf.Options or an
// rdkafka.<property> key naming a librdkafka property) or by Fluent Bit
// itself.
func accepted(key string) bool {
	k := strings.ToLower(key)
	if p, ok := strings.CutPrefix(k, conf.RdkafkaPrefix); ok {
		return slices.Contains(rdkProps(), p)
	}
	for _, o := range conf.Options {
		if strings.EqualFold(o.Name, key) {
			return true
		}
	}
	for _, c := range coreKeys {
		if k == c || strings.HasSuffix(c, ".") && strings.HasPrefix(k, c) {
			return true
		}
	}
	return false
}

var rdkProps = sync.OnceValue(rdk.Properties)

// exampleKey is one key of a gokafka output section of an example.
type exampleKey struct {
	Name, Value string
	Where       string // file:line
}

// TestExampleKeys: every key of every gokafka output in deploy/ (classic and
// YAML Fluent Bit configurations, also when a Kubernetes manifest embeds
// them), in examples/, and in the ```ini blocks of README.md and docs/ is one
// the plugin, librdkafka or Fluent Bit reads, and conf.Load (the plugin's
// Init before it makes a producer) takes its values without a warning, so
// an operator who copies an example gets a working configuration.
func TestExampleKeys(t *testing.T) {
	root := "../.."
	var files []string
	for _, pattern := range []string{"deploy/*", "deploy/*/*", "examples/*", "README.md", "docs/*.md"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	var keys []exampleKey
	outputs := map[string]int{} // kind of source -> gokafka outputs found
	for _, path := range files {
		rel, _ := filepath.Rel(root, path)
		data, err := os.ReadFile(path)
		if err != nil {
			continue // a directory
		}
		for _, s := range exampleOutputs(rel, string(data)) {
			outputs[s.kind]++
			keys = append(keys, s.keys...)
			if c, err := conf.Load(s.getter(), rdkProps()); err != nil {
				t.Errorf("the gokafka output at %s fails Init: %v", s.keys[0].Where, err)
			} else if len(c.Warnings) > 0 {
				t.Errorf("the gokafka output at %s gets warnings at Init: %q", s.keys[0].Where, c.Warnings)
			}
		}
	}
	t.Logf("gokafka outputs found: %v, %d keys", outputs, len(keys))
	for _, kind := range []string{"classic", "yaml", "readme"} {
		if outputs[kind] == 0 {
			t.Errorf("no gokafka output found in a %s example: the extraction is broken or an example is gone", kind)
		}
	}
	unknown := map[string][]string{} // lower-case key -> where
	spelling := map[string]string{}
	for _, k := range keys {
		if !accepted(k.Name) {
			low := strings.ToLower(k.Name)
			if spelling[low] == "" {
				spelling[low] = k.Name
			}
			unknown[low] = append(unknown[low], k.Where)
		}
	}
	if len(unknown) > 0 {
		var lines []string
		for low, where := range unknown {
			lines = append(lines, spelling[low]+" ("+strings.Join(where, ", ")+")")
		}
		sort.Strings(lines)
		t.Errorf("%d keys of the examples are not accepted (not in conf.Options, not rdkafka.*, not read by Fluent Bit itself):\n  %s",
			len(unknown), strings.Join(lines, "\n  "))
	}
}

// exampleOutput is one gokafka output section found in an example.
type exampleOutput struct {
	kind string // classic, yaml or readme
	keys []exampleKey
}

// envVar is a ${NAME} reference, which Fluent Bit replaces from its
// environment.
var envVar = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}`)

// getter reads the section's keys as Init would, each ${NAME} replaced by a
// value valid for its key; a snippet without Brokers gets one.
func (o exampleOutput) getter() conf.MapGetter {
	g := conf.MapGetter{"Brokers": "kafka:9092"}
	for _, k := range o.keys {
		stand := "value"
		if strings.EqualFold(k.Name, "Brokers") {
			stand = "kafka:9092"
		}
		g[strings.ToLower(k.Name)] = envVar.ReplaceAllString(k.Value, stand)
	}
	if _, ok := g["brokers"]; ok {
		delete(g, "Brokers")
	}
	return g
}

// exampleOutputs finds the gokafka outputs of the file at path with content
// data: a classic configuration (*.conf), a Fluent Bit YAML configuration or a
// Kubernetes manifest whose ConfigMap embeds configurations (*.yaml, *.yml),
// or the ```ini blocks of Markdown (*.md).
func exampleOutputs(path, data string) []exampleOutput {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".conf":
		return classicOutputs(path, data, 0, "classic")
	case ".yaml", ".yml":
		files := embedded(data)
		if len(files) == 0 {
			return yamlOutputs(path, data)
		}
		var out []exampleOutput
		for _, e := range files {
			out = append(out, exampleOutputs(path+":"+e.key, e.text)...)
		}
		return out
	case ".md":
		var out []exampleOutput
		lines := strings.Split(data, "\n")
		for i := 0; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) != "```ini" {
				continue
			}
			start := i + 1
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
			}
			out = append(out, classicOutputs(path, strings.Join(lines[start:i], "\n"), start, "readme")...)
		}
		return out
	}
	return nil
}

// classicOutputs parses Fluent Bit's classic format; line numbers in Where are
// offset by first.
func classicOutputs(path, data string, first int, kind string) []exampleOutput {
	var out []exampleOutput
	var cur *exampleOutput
	gokafka := false
	flush := func() {
		if cur != nil && gokafka {
			out = append(out, *cur)
		}
		cur, gokafka = nil, false
	}
	sc := bufio.NewScanner(strings.NewReader(data))
	for n := first + 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '@' {
			continue
		}
		if line[0] == '[' {
			flush()
			if strings.EqualFold(line, "[OUTPUT]") {
				cur = &exampleOutput{kind: kind}
			}
			continue
		}
		if cur == nil {
			continue
		}
		key, value, _ := strings.Cut(line, " ")
		if strings.EqualFold(key, "name") && strings.EqualFold(strings.TrimSpace(value), "gokafka") {
			gokafka = true
		}
		cur.keys = append(cur.keys, exampleKey{key, strings.TrimSpace(value), path + ":" + strconv.Itoa(n)})
	}
	flush()
	return out
}

// yamlOutputs finds the items of `outputs:` lists in Fluent Bit's YAML
// format (pipeline: outputs: - name: ...) and keeps those named gokafka. It
// reads the keys of each item at the item's own indentation; nested values
// (processors) are skipped.
func yamlOutputs(path, data string) []exampleOutput {
	lines := strings.Split(data, "\n")
	var out []exampleOutput
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "outputs:" {
			continue
		}
		listIndent := indent(lines[i])
		var cur *exampleOutput
		gokafka, itemIndent, keyIndent := false, -1, -1
		flush := func() {
			if cur != nil && gokafka {
				out = append(out, *cur)
			}
			cur, gokafka = nil, false
		}
		for i++; i < len(lines); i++ {
			raw := lines[i]
			text := strings.TrimSpace(raw)
			if text == "" || text[0] == '#' {
				continue
			}
			ind := indent(raw)
			if ind <= listIndent {
				i--
				break
			}
			if strings.HasPrefix(text, "- ") && (itemIndent < 0 || ind == itemIndent) {
				flush()
				itemIndent = ind
				cur = &exampleOutput{kind: "yaml"}
				text = strings.TrimSpace(text[2:])
				keyIndent = indent(strings.Replace(raw, "-", " ", 1)) // the first key is on the dash's line
			} else if ind != keyIndent || cur == nil {
				continue // nested
			}
			key, value, ok := strings.Cut(text, ":")
			if !ok {
				continue
			}
			key = strings.Trim(strings.TrimSpace(key), `"'`)
			value = strings.Trim(strings.TrimSpace(value), `"'`)
			if strings.EqualFold(key, "name") && strings.EqualFold(value, "gokafka") {
				gokafka = true
			}
			cur.keys = append(cur.keys, exampleKey{key, value, path + ":" + strconv.Itoa(i+1)})
		}
		flush()
	}
	return out
}

type embeddedFile struct{ key, text string }

// embedded returns the configurations a Kubernetes manifest holds as block
// scalars (`fluent-bit.conf: |` under a ConfigMap's data), dedented.
func embedded(data string) []embeddedFile {
	lines := strings.Split(data, "\n")
	var out []embeddedFile
	for i := 0; i < len(lines); i++ {
		text := strings.TrimSpace(lines[i])
		key, rest, ok := strings.Cut(text, ":")
		rest = strings.TrimSpace(rest)
		ext := strings.ToLower(filepath.Ext(key))
		if !ok || !strings.HasPrefix(rest, "|") || (ext != ".conf" && ext != ".yaml" && ext != ".yml") {
			continue
		}
		base := indent(lines[i])
		var block []string
		strip := -1
		for i++; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) == "" {
				block = append(block, "")
				continue
			}
			ind := indent(lines[i])
			if ind <= base {
				i--
				break
			}
			if strip < 0 {
				strip = ind
			}
			block = append(block, lines[i][min(strip, ind):])
		}
		out = append(out, embeddedFile{key, strings.Join(block, "\n")})
	}
	return out
}

func indent(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

// TestExampleExtraction checks the extraction itself on small examples of
// each form.
func TestExampleExtraction(t *testing.T) {
	classic := "[SERVICE]\n    Flush 1\n[OUTPUT]\n    Name  stdout\n    Match *\n[OUTPUT]\n    # comment\n    Name gokafka\n    Brokers b:9092\n    Bad_Key x\n"
	yaml := "pipeline:\n  outputs:\n    - name: stdout\n      match: '*'\n    - name: gokafka\n      brokers: b:9092\n      processors:\n        logs:\n          - name: content_modifier\n      bad_key: x\nservice:\n  flush: 1\n"
	manifest := "apiVersion: v1\nkind: ConfigMap\ndata:\n  fluent-bit.conf: |\n    [OUTPUT]\n        Name gokafka\n        Bad_Key x\n  fluent-bit.yaml: |\n" +
		"    pipeline:\n      outputs:\n        - name: gokafka\n          bad_key: x\n"
	markdown := "text\n```ini\n[OUTPUT]\n    Name gokafka\n    Bad_Key x\n```\n```sh\n[OUTPUT]\n    Name gokafka\n    Not_Ini x\n```\n"
	for _, c := range []struct {
		path, data string
		want       []string // keys of each gokafka output, joined by ","
	}{
		{"a.conf", classic, []string{"Name,Brokers,Bad_Key"}},
		{"a.yaml", yaml, []string{"name,brokers,processors,bad_key"}},
		{"cm.yaml", manifest, []string{"Name,Bad_Key", "name,bad_key"}},
		{"README.md", markdown, []string{"Name,Bad_Key"}},
	} {
		var got []string
		for _, o := range exampleOutputs(c.path, c.data) {
			var names []string
			for _, k := range o.keys {
				names = append(names, k.Name)
			}
			got = append(got, strings.Join(names, ","))
		}
		if strings.Join(got, " | ") != strings.Join(c.want, " | ") {
			t.Errorf("%s: got %q, want %q", c.path, got, c.want)
		}
	}
	bad := exampleOutputs("bad.conf", "[OUTPUT]\n    Name gokafka\n    Brokers ${B}\n    Topics ${T}\n    Batch_Size lots\n")
	if len(bad) != 1 || bad[0].getter().Get("Brokers") != "kafka:9092" || bad[0].getter().Get("Topics") != "value" {
		t.Fatalf("bad.conf: %+v", bad)
	}
	if _, err := conf.Load(bad[0].getter(), rdkProps()); err == nil || !strings.HasPrefix(err.Error(), "Batch_Size: ") {
		t.Errorf("Batch_Size lots: %v", err)
	}
	for key, want := range map[string]bool{"Brokers": true, "RDKAFKA.sasl.password": true, "rdkafka.": false, "rdkafka.acsk": false,
		"Retry_Limit": true, "storage.total_limit_size": true, "tls.verify": true, "net.keepalive": true, "Bad_Key": false} {
		if accepted(key) != want {
			t.Errorf("accepted(%q) = %v", key, !want)
		}
	}
}
