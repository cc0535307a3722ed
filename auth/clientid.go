package auth

import (
	"errors"
	"fmt"
)

// MaxClientIDLen is the longest accepted client id.
const MaxClientIDLen = 128

// ErrInvalidClientID reports a client id outside the allowed alphabet or
// length.
var ErrInvalidClientID = errors.New("invalid client_id")

// ValidateClientID checks that id is 1-128 ASCII letters, digits, '.', '_'
// or '-'. Client ids end up in tokens, logs and config files, so nothing
// else is allowed.
func ValidateClientID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: it is required", ErrInvalidClientID)
	}
	if len(id) > MaxClientIDLen {
		return fmt.Errorf("%w: at most %d characters allowed, got %d", ErrInvalidClientID, MaxClientIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: only ASCII letters, digits, '.', '_' and '-' are allowed (bad character at position %d)", ErrInvalidClientID, i+1)
		}
	}
	return nil
}
