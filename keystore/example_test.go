package keystore_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/keystore"
)

func Example() {
	dir, err := os.MkdirTemp("", "keystore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	id, err := identity.Generate()
	if err != nil {
		log.Fatal(err)
	}

	s, err := keystore.Open(filepath.Join(dir, "keys.store"), id)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// Keep a prekey secret until a grace period after its prekey expires.
	expires := time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)
	if err := s.Put("prekey/0a1b2c", []byte("32-byte X-Wing seed ............"), expires.Add(7*24*time.Hour)); err != nil {
		log.Fatal(err)
	}
	for _, e := range s.List("prekey/") {
		fmt.Println(e.Name, "deleted after", e.DeleteAfter.Format(time.DateOnly))
	}

	// The policy runs Expire on a schedule; the record is overwritten on disk.
	n, err := s.Expire(time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		log.Fatal(err)
	}
	_, ok := s.Get("prekey/0a1b2c")
	fmt.Println("expired:", n, "still there:", ok)
	// Output:
	// prekey/0a1b2c deleted after 2027-01-22
	// expired: 1 still there: false
}
