package keys

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealedKeysOpenOnlyWithTheirSecretAndRecord(t *testing.T) {
	secret := bytes.Repeat([]byte("k"), 32)
	s, err := NewSealer(secret)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewSealer(bytes.Repeat([]byte("o"), 32))
	if err != nil {
		t.Fatal(err)
	}
	hm, err := GenerateHMAC()
	if err != nil {
		t.Fatal(err)
	}
	ks := []*Key{hm}
	for _, alg := range Asymmetric {
		k, err := Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	for _, k := range ks {
		t.Run(k.Alg(), func(t *testing.T) {
			sealed, err := s.Seal(k)
			if err != nil {
				t.Fatal(err)
			}
			if k.Symmetric() && bytes.Contains(sealed, k.SigningKey().([]byte)) {
				t.Fatal("the sealed record holds the secret in the clear")
			}
			got, err := s.Open(k.ID(), k.Alg(), sealed)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if got.ID() != k.ID() || got.Alg() != k.Alg() || !got.CanSign() {
				t.Fatalf("opened %s %s (signs %v), want %s %s", got.ID(), got.Alg(), got.CanSign(), k.ID(), k.Alg())
			}
			tampered := bytes.Clone(sealed)
			tampered[len(tampered)-1] ^= 1
			for name, open := range map[string]func() (*Key, error){
				"another secret":       func() (*Key, error) { return other.Open(k.ID(), k.Alg(), sealed) },
				"another key's record": func() (*Key, error) { return s.Open("someone-else", k.Alg(), sealed) },
				"another algorithm":    func() (*Key, error) { return s.Open(k.ID(), otherAlg(k.Alg()), sealed) },
				"a flipped bit":        func() (*Key, error) { return s.Open(k.ID(), k.Alg(), tampered) },
				"truncated":            func() (*Key, error) { return s.Open(k.ID(), k.Alg(), sealed[:10]) },
			} {
				if _, err := open(); !errors.Is(err, ErrUnseal) {
					t.Errorf("%s: %v, want ErrUnseal", name, err)
				}
			}
		})
	}
	if _, err := NewSealer([]byte("short")); !errors.Is(err, ErrWeakKey) {
		t.Errorf("a short key-encryption secret: %v, want ErrWeakKey", err)
	}
}

func otherAlg(alg string) string {
	if alg == ES256 {
		return EdDSA
	}
	return ES256
}
