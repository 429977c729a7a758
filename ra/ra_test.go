package ra

import (
	"math"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

func record() []byte {
	m := msgp.AppendMapHeader(nil, 3)
	m = msgp.AppendString(msgp.AppendString(m, "log"), "hello")
	m = msgp.AppendMapHeader(msgp.AppendString(m, "kubernetes"), 2)
	m = msgp.AppendMapHeader(msgp.AppendString(m, "labels"), 2)
	m = msgp.AppendString(msgp.AppendString(m, "app"), "web")
	m = msgp.AppendString(msgp.AppendString(m, "app.kubernetes.io/name"), "shop")
	m = msgp.AppendInt(msgp.AppendString(m, "restarts"), -3)
	m = msgp.AppendArrayHeader(msgp.AppendString(m, "items"), 4)
	m = msgp.AppendFloat64(m, 1234567.5)
	m = msgp.AppendBool(m, true)
	m = msgp.AppendFloat32(m, 0.1)
	return msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(m, 1), "k"), "v")
}

func TestLookup(t *testing.T) {
	rec := record()
	for path, want := range map[string]string{
		"$log": "hello", "log": "hello", "$kubernetes['labels']['app']": "web",
		`$kubernetes["labels"]['app.kubernetes.io/name']`: "shop", "$kubernetes['restarts']": "-3",
		"$items[0]": "1234567.5", "$items[1]": "true", "$items[2]": "0.1", // plain, as in the JSON; a float32 at its own precision
	} {
		p, err := Parse(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		v, ok := p.Lookup(rec)
		text, isText := AppendText(nil, v)
		if !ok || !isText || string(text) != want {
			t.Errorf("%s: got %q (found %v, text %v), want %q", path, text, ok, isText, want)
		}
	}
	for _, path := range []string{"$missing", "$log['x']", "$kubernetes['labels']['none']", "$items[7]", "$items[3]['x']", "$kubernetes[0]"} {
		p, _ := Parse(path)
		if v, ok := p.Lookup(rec); ok {
			t.Errorf("%s: found %x", path, v)
		}
	}
	if _, ok := (Path{{Key: "items"}}).Lookup(rec[:len(rec)-3]); ok {
		t.Error("a truncated value is not found")
	}
	p, _ := Parse("$kubernetes['labels']")
	if v, _ := p.Lookup(rec); msgp.NextType(v) != msgp.MapType {
		t.Error("a map value is returned whole")
	} else if _, ok := AppendText(nil, v); ok {
		t.Error("a map has no text form")
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{"", "$", "$a[", "$a['b'", "$a[x]", "$a[-1]", "a['b']", "$a]b", "$a['b']x", "$a['b' 'c']",
		"$a[1 2]", "$a[2147483648]", "$a[4294967296]", "$a['b]", "$a b", "$a[]"} {
		if p, err := Parse(bad); err == nil {
			t.Errorf("%q parsed as %v", bad, p)
		}
	}
	for in, want := range map[string]string{
		" $a['b'][2] ":                     "$a['b'][2]",
		"$kubernetes ['labels'] [ 'app' ]": "$kubernetes['labels']['app']", // blanks between parts, as Fluent Bit's lexer skips them
		"$a['it''s']['x]y'][ 0 ]":          "$a['it''s']['x]y'][0]",
		`$a["say ""hi"""]`:                 `$a['say "hi"']`,
		"$a[2147483647]":                   "$a[2147483647]",
		"$app.kubernetes.io['name']":       "$app.kubernetes.io['name']",
	} {
		if p, err := Parse(in); err != nil || p.String() != want {
			t.Errorf("%q: %v (%v), want %s", in, p, err, want)
		}
	}
	if p, _ := Parse("$a['it''s']"); p[1].Key != "it's" {
		t.Errorf("doubled quote: key %q", p[1].Key)
	}
}

func FuzzLookup(f *testing.F) {
	f.Add(record(), "$kubernetes['labels']['app']")
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		if p, err := Parse(path); err == nil {
			if v, ok := p.Lookup(body); ok {
				AppendText(nil, v)
			}
		}
	})
}

// TestNonStringKeys: an entry whose key is not a string is skipped, at the
// top level and in a nested map, as Fluent Bit's record accessor does.
func TestNonStringKeys(t *testing.T) {
	m := msgp.AppendMapHeader(nil, 4)
	m = msgp.AppendString(msgp.AppendInt(m, 1), "one")
	m = msgp.AppendString(msgp.AppendNil(m), "none")
	m = msgp.AppendMapHeader(msgp.AppendString(m, "kubernetes"), 3)
	m = msgp.AppendArrayHeader(msgp.AppendBool(msgp.AppendArrayHeader(m, 1), true), 0) // key [true], value []
	m = msgp.AppendMapHeader(msgp.AppendFloat64(m, 2.5), 0)
	m = msgp.AppendMapHeader(msgp.AppendString(m, "labels"), 1)
	m = msgp.AppendString(msgp.AppendString(m, "app"), "web")
	m = msgp.AppendString(msgp.AppendString(m, "topic"), "orders")
	for path, want := range map[string]string{"$topic": "orders", "$kubernetes['labels']['app']": "web"} {
		p, _ := Parse(path)
		v, ok := p.Lookup(m)
		if text, _ := AppendText(nil, v); !ok || string(text) != want {
			t.Errorf("%s: got %q (found %v), want %q", path, text, ok, want)
		}
	}
}

// TestMalformedBodies: a lookup in a body that is not well-formed msgpack
// ends as not found.
func TestMalformedBodies(t *testing.T) {
	p := Path{{Key: "topic"}}
	for name, body := range map[string][]byte{
		"empty":                        {},
		"not a map":                    msgp.AppendString(nil, "topic"),
		"entries missing":              msgp.AppendMapHeader(nil, 3),
		"key truncated":                msgp.AppendString(msgp.AppendMapHeader(nil, 1), "topic")[:4],
		"non-string key, then nothing": msgp.AppendInt(msgp.AppendMapHeader(nil, 2), 1),
		"non-string key truncated":     msgp.AppendFloat64(msgp.AppendMapHeader(nil, 1), 1.5)[:4],
		"non-string key, value cut":    msgp.AppendString(msgp.AppendInt(msgp.AppendMapHeader(nil, 2), 1), "one")[:4],
		"value truncated":              msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "topic"), "orders")[:9],
		"bad byte as key":              append([]byte{0x82, 0xc1, 0xa1, 'x'}, msgp.AppendString(msgp.AppendString(nil, "topic"), "orders")...),
	} {
		if v, ok := p.Lookup(body); ok {
			t.Errorf("%s: found %x", name, v)
		}
	}
}

// TestDuplicateKeys: a key a map repeats gives its last copy's value, at
// any depth, as Fluent Bit's record accessor looks keys up from a map's
// end; str and bin keys are alike.
func TestDuplicateKeys(t *testing.T) {
	m := msgp.AppendMapHeader(nil, 6)
	m = msgp.AppendString(msgp.AppendString(m, "topic"), "a")
	m = msgp.AppendString(msgp.AppendString(m, "log"), "x")
	m = msgp.AppendMapHeader(msgp.AppendString(m, "k"), 2)
	m = msgp.AppendString(msgp.AppendString(m, "app"), "first map")
	m = msgp.AppendString(msgp.AppendString(m, "tier"), "1")
	m = msgp.AppendString(msgp.AppendString(m, "topic"), "b")
	m = msgp.AppendMapHeader(msgp.AppendString(m, "k"), 3)
	m = msgp.AppendString(msgp.AppendString(m, "app"), "web")
	m = msgp.AppendString(msgp.AppendBytes(m, []byte("app")), "shop") // a bin key
	m = msgp.AppendString(msgp.AppendInt(m, 1), "not text")
	m = msgp.AppendString(msgp.AppendBytes(m, []byte("key")), "bin key")
	for path, want := range map[string]string{"$topic": "b", "$log": "x", "$k['app']": "shop", "$key": "bin key"} {
		p, _ := Parse(path)
		v, ok := p.Lookup(m)
		if text, _ := AppendText(nil, v); !ok || string(text) != want {
			t.Errorf("%s: got %q (found %v), want %q", path, text, ok, want)
		}
	}
	// Only the last map of the key is looked in.
	for _, path := range []string{"$k['tier']", "$k['missing']"} {
		p, _ := Parse(path)
		if v, ok := p.Lookup(m); ok {
			t.Errorf("%s: found %x", path, v)
		}
	}
}

// TestAppendTextScalars: bin is its bytes; an unsigned integer beyond
// int64 stays unsigned; floats are plain from 1e-4 to below 1e16, as C's
// %.16g writes them, with an exponent outside.
func TestAppendTextScalars(t *testing.T) {
	for _, tc := range []struct {
		v    []byte
		want string
	}{
		{msgp.AppendBytes(nil, []byte("bin key")), "bin key"},
		{msgp.AppendUint64(nil, math.MaxUint64), "18446744073709551615"},
		{msgp.AppendInt64(nil, math.MinInt64), "-9223372036854775808"},
		{msgp.AppendFloat64(nil, 1e15), "1000000000000000"},
		{msgp.AppendFloat64(nil, 1e16), "1e+16"},
		{msgp.AppendFloat64(nil, 0.0001), "0.0001"},
		{msgp.AppendFloat64(nil, 0.00001), "1e-05"},
		{msgp.AppendFloat64(nil, -2.5e-5), "-2.5e-05"},
		{msgp.AppendFloat64(nil, 0), "0"},
	} {
		if got, ok := AppendText(nil, tc.v); !ok || string(got) != tc.want {
			t.Errorf("%x: got %q (%v), want %q", tc.v, got, ok, tc.want)
		}
	}
}
