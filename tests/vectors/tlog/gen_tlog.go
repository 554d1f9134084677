// gen_tlog.go - parley's transparency-log vectors, made with Go's
// golang.org/x/mod/sumdb/tlog and sumdb/note (Debian
// golang-golang-x-mod-dev) as an implementation independent of parley's.
//
//	go run gen_tlog.go tree   > tree.txt     the tree vectors (see README.md)
//	go run gen_tlog.go notes  > notes.txt    the signed-note vectors
//	go run gen_tlog.go verify FILE           check a note made elsewhere
//
// Not built or run by the test suite, which needs no Go: the tree vectors
// are committed as their SHA-256 (tree.sha256) and the note vectors as
// they are (notes.txt). README.md says how to rerun it.
package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	rootsUpTo  = 2000           // a root line for every size 1..rootsUpTo
	pairs      = 10000          // inclusion pairs, and as many consistency pairs
	maxLeaves  = 100000         // trees of the pairs have 1..maxLeaves leaves
	prngSeed   = 0x7061726c6579 // "parley"
	logName    = "parley.example.org/gaza"
	witName    = "witness.example.org/w1"
	cosignTime = 1700000000
)

// splitmix64: the generator the C and Python sides use too.
type prng struct{ s uint64 }

func (p *prng) next() uint64 {
	p.s += 0x9e3779b97f4a7c15
	z := p.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// hashStore keeps every stored hash in memory.
type hashStore []tlog.Hash

func (s *hashStore) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = (*s)[x]
	}
	return out, nil
}

func record(i int64) []byte { return []byte(fmt.Sprintf("record %d", i)) }

func hashes(h []tlog.Hash) string {
	if len(h) == 0 {
		return "-"
	}
	parts := make([]string, len(h))
	for i, x := range h {
		parts[i] = hex.EncodeToString(x[:])
	}
	return strings.Join(parts, ",")
}

func build(n int64) *hashStore {
	s := &hashStore{}
	for i := int64(0); i < n; i++ {
		add, err := tlog.StoredHashes(i, record(i), s)
		if err != nil {
			panic(err)
		}
		*s = append(*s, add...)
	}
	return s
}

func tree() {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	s := build(maxLeaves)
	fmt.Fprintf(w, "# parley tlog vectors v1: records \"record <i>\", splitmix64 seed %d\n", uint64(prngSeed))
	for n := int64(1); n <= rootsUpTo; n++ {
		h, err := tlog.TreeHash(n, s)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(w, "root %d %x\n", n, h[:])
	}
	r := prng{prngSeed}
	for j := 0; j < pairs; j++ {
		n := int64(1 + r.next()%maxLeaves)
		i := int64(r.next() % uint64(n))
		p, err := tlog.ProveRecord(n, i, s)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(w, "inclusion %d %d %s\n", i, n, hashes(p))
	}
	for j := 0; j < pairs; j++ {
		n := int64(1 + r.next()%maxLeaves)
		m := int64(1 + r.next()%uint64(n))
		p, err := tlog.ProveTree(n, m, s)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(w, "consistency %d %d %s\n", m, n, hashes(p))
	}
}

func seed(b byte) []byte { return bytes.Repeat([]byte{b}, ed25519.SeedSize) }

// cosignKeyID: SHA-256(name || "\n" || 0x04 || public key)[:4], per
// c2sp.org/tlog-cosignature.
func cosignKeyID(name string, pub ed25519.PublicKey) []byte {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{0x04})
	h.Write(pub)
	return h.Sum(nil)[:4]
}

// cosign makes a cosignature/v1 signature line for the note text.
func cosign(priv ed25519.PrivateKey, name, text string, ts uint64) string {
	msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, text)
	sig := ed25519.Sign(priv, []byte(msg))
	blob := append([]byte{}, cosignKeyID(name, priv.Public().(ed25519.PublicKey))...)
	blob = binary.BigEndian.AppendUint64(blob, ts)
	blob = append(blob, sig...)
	return "— " + name + " " + base64.StdEncoding.EncodeToString(blob) + "\n"
}

func notes() {
	s := build(rootsUpTo)
	root, err := tlog.TreeHash(rootsUpTo, s)
	if err != nil {
		panic(err)
	}
	skey, vkey, err := note.GenerateKey(bytes.NewReader(seed(3)), logName)
	if err != nil {
		panic(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		panic(err)
	}
	logPriv := ed25519.NewKeyFromSeed(seed(3))
	witPriv := ed25519.NewKeyFromSeed(seed(4))
	witPub := witPriv.Public().(ed25519.PublicKey)

	fmt.Println("# parley signed-note vectors v1 (see README.md)")
	fmt.Printf("log_seed %x\n", seed(3))
	fmt.Printf("log_name %s\n", logName)
	fmt.Printf("log_public_key %x\n", []byte(logPriv.Public().(ed25519.PublicKey)))
	fmt.Printf("log_key_id %08x\n", signer.KeyHash())
	fmt.Printf("log_vkey %s\n", vkey)
	fmt.Printf("witness_seed %x\n", seed(4))
	fmt.Printf("witness_name %s\n", witName)
	fmt.Printf("witness_public_key %x\n", []byte(witPub))
	fmt.Printf("witness_key_id %x\n", cosignKeyID(witName, witPub))
	fmt.Printf("cosignature_time %d\n", cosignTime)

	texts := []struct{ key, text string }{
		{"checkpoint", fmt.Sprintf("%s\n%d\n%s\n", logName, rootsUpTo, root)},
		{"checkpoint_ext", fmt.Sprintf("%s\n%d\n%s\nparley extension line\n", logName, rootsUpTo, root)},
		{"checkpoint_empty", fmt.Sprintf("%s\n0\n%s\n", logName,
			base64.StdEncoding.EncodeToString(func() []byte { h := sha256.Sum256(nil); return h[:] }()))},
	}
	for _, t := range texts {
		msg, err := note.Sign(&note.Note{Text: t.text}, signer)
		if err != nil {
			panic(err)
		}
		// The cosignature goes after the log's signature.
		msg = append(msg, cosign(witPriv, witName, t.text, cosignTime)...)
		// Go's own parser accepts it, with the cosignature as an unknown key.
		v, _ := note.NewVerifier(vkey)
		n, err := note.Open(msg, note.VerifierList(v))
		if err != nil || len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 1 {
			panic(fmt.Sprintf("own note does not open: %v", err))
		}
		fmt.Printf("%s %x\n", t.key, msg)
	}
}

// verify checks a note FILE (a checkpoint signed by the log key of seed 3
// and cosigned by the witness key of seed 4) and prints what it found.
func verify(path string) {
	msg, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	_, vkey, _ := note.GenerateKey(bytes.NewReader(seed(3)), logName)
	v, _ := note.NewVerifier(vkey)
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		fmt.Println("note: REJECTED:", err)
		os.Exit(1)
	}
	fmt.Printf("note: signed by %s+%08x\n", n.Sigs[0].Name, n.Sigs[0].Hash)
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] == "" {
		fmt.Println("checkpoint: REJECTED: too few lines")
		os.Exit(1)
	}
	h, err := tlog.ParseHash(lines[2])
	if err != nil {
		fmt.Println("checkpoint: REJECTED: root hash:", err)
		os.Exit(1)
	}
	fmt.Printf("checkpoint: origin %s size %s root %x\n", lines[0], lines[1], h[:])
	witPriv := ed25519.NewKeyFromSeed(seed(4))
	witPub := witPriv.Public().(ed25519.PublicKey)
	id := cosignKeyID(witName, witPub)
	found := 0
	for _, sig := range n.UnverifiedSigs {
		raw, _ := base64.StdEncoding.DecodeString(sig.Base64)
		if sig.Name != witName || len(raw) != 76 || !bytes.Equal(raw[:4], id) {
			continue
		}
		ts := binary.BigEndian.Uint64(raw[4:12])
		msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, n.Text)
		if !ed25519.Verify(witPub, []byte(msg), raw[12:]) {
			fmt.Println("cosignature: REJECTED: bad signature")
			os.Exit(1)
		}
		fmt.Printf("cosignature: %s time %d verified\n", witName, ts)
		found++
	}
	if found == 0 {
		fmt.Println("cosignature: none from", witName)
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gen_tlog tree|notes|verify FILE")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "tree":
		tree()
	case "notes":
		notes()
	case "verify":
		verify(os.Args[2])
	default:
		fmt.Fprintln(os.Stderr, "usage: gen_tlog tree|notes|verify FILE")
		os.Exit(2)
	}
}
