package policies

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseConfig feeds raw bytes to ParseConfig as a committed
// gitpace.yaml. Invariants: no panic or hang; a config xor an error.
func FuzzParseConfig(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "policies", "gitpace.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("windows:\n- kind: deny\n  schedule: \"0 22 * * *\"\n  duration: 8h\n  timeZone: Asia/Shanghai\n---\nonFailure: revert\n"))
	f.Add([]byte("apps:\n- match: \"payments/*\"\n  namespaces: [\"payments-*\"]\n  kinds: [core/Secret, apps/Deployment]\n"))
	f.Add([]byte("\xff\xfeo\x00n\x00"))
	f.Add([]byte("apps:\n- path: charts/web\n  name: web-prod\n  namespace: prod\n  createNamespace: true\n  helm:\n    releaseName: web\n    valuesFiles: [values-prod.yaml]\n    values: {replicaCount: 3, image: {tag: \"1.2\"}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(ConfigFile, data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("ParseConfig returned %v and %v", cfg, err)
		}
	})
}

// FuzzParseKeyRing feeds raw bytes to ParseKeyRing as a --verify-signatures
// key file. Invariants: no panic or hang; a key ring xor an error.
func FuzzParseKeyRing(f *testing.F) {
	pub, err := os.ReadFile(filepath.Join("testdata", "ssh-git", "key.pub"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pub)
	f.Add([]byte("# trusted\njane@example.com namespaces=\"git\" " + string(pub)))
	f.Add([]byte("cert-authority " + string(pub)))
	_, armored := newTestKey(f, "Fuzz")
	f.Add(armored)
	f.Add(append(append([]byte{}, armored...), pub...))
	f.Fuzz(func(t *testing.T, data []byte) {
		kr, err := ParseKeyRing("keys.asc", data)
		if (kr == nil) == (err == nil) {
			t.Fatalf("ParseKeyRing returned %v and %v", kr, err)
		}
	})
}
