// Package keystore keeps a member's secrets on disk, encrypted, and erases
// them for real when they are deleted: the local key store of forward
// secrecy (issue 19).
//
// Prekey secrets, sender keys and ratchet states must survive a restart
// without being recovered from the group's log, which is kept forever; and
// once the retention policy deletes one, a thief who later takes the whole
// home directory, identity included, must not find it. [Open] a store with
// the member's [identity.Identity], then [Store.Put], [Store.Get],
// [Store.List], and delete with [Store.Delete], [Store.DeletePrefix] or
// [Store.Expire]. Every change is on disk (synced) before the call returns.
//
// # The file
//
// The file starts with a header:
//
//	"DeMeS key store v1\n"                 the magic; the version is part of it
//	uint16be(n) || sealed (n bytes)        the store key, sealed with age
//	signature (64 bytes)                   by the identity's Ed25519 key
//
// The store key is 32 random bytes, encrypted with age (binary format) to
// the identity's X25519 recipient, so only the identity opens the store; a
// sealed identity (package keys) is opened with its passphrase first. The
// signature is of "DeMeS key store header v1\x00" followed by everything
// before it. Anyone can seal a key to a public recipient, so without the
// signature someone who can write the file but does not hold the identity
// could plant a store of their own, for instance a ratchet state whose chain
// key they know, and the member would encrypt with it.
//
// Records follow the header, appended one after another:
//
//	uint32be(len(body)) || flag || body
//	body = nonce (24) || XChaCha20-Poly1305(store key, nonce, plaintext, AAD)
//	plaintext = uint8(len(name)) || name || uint8(has deadline) || int64be(deadline, Unix ns) || secret
//	AAD = "DeMeS key store record v1\x00" || uint64be(offset of the record)
//
// The flag is 'L' for a live record and 'E' for an erased one, whose body is
// all zeros. Names and deletion times are encrypted with the secrets; what the
// file shows is how many records there are and how large each is. The store
// key is fresh for every file (at creation and at each compaction) and the
// offset is in the associated data, so a record cannot be moved within a
// file or into another file. The flag is not authenticated: it changes when
// a record is erased, and setting it on a live record only deletes that
// record, which whoever can write the file can do anyway.
//
// A name is 1 to [MaxName] bytes and a secret at most [MaxSecret] bytes;
// Put refuses anything larger with [ErrInvalid] and changes nothing.
//
// # Deletion
//
// Deleting an entry overwrites its record in place, in two synced steps:
// first the flag becomes 'E', then the body (nonce and ciphertext) becomes
// zeros. On a file system that writes in place (ext4, XFS, in their default
// modes), the ciphertext is then gone from the disk blocks, and with it any
// way to recover the secret, even with the identity and the store key. Put
// erases the value it replaces the same way, after the new value is synced.
// [Store.DeletePrefix] and [Store.Expire] erase many records with the same
// two syncs.
//
// Erased records leave zeros behind. When they take more than half of the
// file (and at least 1 MiB), the store compacts: it writes the live records
// to a new file under a new store key, renames it over the old one, and then
// overwrites the whole old file with zeros before letting it go. The old file
// keeps a second name (path+".old") until it is scrubbed, so that a crash
// cannot free its blocks unscrubbed: they would still hold live records that
// may be deleted from the new file later. [Open] scrubs path+".old" and
// path+".tmp" if a crash left them.
//
// What the store cannot promise:
//   - Copy-on-write file systems (btrfs, ZFS, bcachefs), ext4 with
//     data=journal, and file system snapshots or backups keep old copies of
//     blocks that the store overwrote. So may an SSD's flash translation
//     layer until it reuses the pages. Full-disk encryption, whose key is not
//     in the stolen home, covers those.
//   - Go may leave copies of a secret in memory (stacks are copied when they
//     grow, the AEAD keeps its own copy of the key, out of reach), and memory
//     can be swapped out. The store clears the copies it drops and, on Close, the
//     secrets and the store key it holds; callers should clear the copies Get
//     returns when they are done.
//   - A file that other users can read may have been copied before a
//     deletion, and that copy opens with the identity later. Open therefore
//     refuses a file with any permission for group or others ([ErrPermissions]);
//     the store creates its files with mode 0600.
//   - Someone who can write the file can delete records, truncate it or
//     put back an older copy; the store detects altered records but not a
//     rollback.
//
// # Crashes
//
// Appends and erasures are ordered so that a crash leaves a file that Open
// repairs without error, keeping every change that returned:
//   - A record cut short at the end of the file is the Put that never
//     returned. Open overwrites its bytes with zeros, truncates the file to the
//     last whole record and reports the bytes in [Store.Dropped]. It is
//     recognised as a record running past the end of the file, an end of file
//     of only zeros, or a last record that does not authenticate and holds 16
//     zero bytes in a row (blocks not yet written read as zeros; ciphertext and
//     flipped bits do not produce them).
//   - An 'E' record whose body is not all zeros is an erasure cut between its
//     syncs; Open zeroes it.
//   - Two live records of one name are a replacement cut before the old value
//     was erased; Open keeps the later and erases the earlier.
//
// Any other damage (a bad record header, or a live record that does not
// authenticate anywhere but in such a tail) is an error wrapping [ErrCorrupt]
// that names the record's offset: the store does not drop a secret silently.
// If compaction fails, the erasure that triggered it still happened; the
// error wraps [ErrCompact] so that a caller can log it and go on.
//
// A bit flip that makes the last record's length run past the end of the file
// looks like a cut and is dropped; nothing in the file can tell the two apart.
//
// After a write or sync fails, what is on disk is unknown (the kernel may have
// dropped the pages), so the store refuses further changes ([ErrFailed]) until
// it is opened again; reads keep working from memory.
//
// # Concurrency
//
// A [Store] is safe for concurrent use; one mutex orders its calls. Open takes
// an exclusive lock (flock) on path+".lock" so that two processes cannot use
// one store at once; the second gets [ErrInUse].
package keystore
