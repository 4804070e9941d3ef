package service

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"time"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newControlID returns an MSH-10 of 20 characters: "IZ", then 48 bits of
// milliseconds and 40 random bits in base32. Unique across processes and
// restarts without coordination; the journal's UNIQUE index is the backstop.
func newControlID(now time.Time) string {
	var b [11]byte
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], uint64(now.UnixMilli()))
	copy(b[:6], t[2:])
	rand.Read(b[6:])
	return "IZ" + b32.EncodeToString(b[:])
}
