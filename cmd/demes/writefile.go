package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Writing an output file (backup -o, transcript -o) goes through a
// temporary file in the same directory, with fsync, then into place, so
// that a failed or interrupted write leaves whatever was at the path
// before, never half a file. Errors name the path the person gave, not the
// temporary file.

// writeNewFileWith writes path with mode perm and returns the size
// written, but never over a file that exists: that is an error wrapping
// fs.ErrExist, and nothing is written.
func writeNewFileWith(path string, perm os.FileMode, write func(io.Writer) error) (int64, error) {
	return writeVia(path, perm, write, linkNew)
}

// writeVia writes a temporary file next to path, then calls place to put
// it at path.
func writeVia(path string, perm os.FileMode, write func(io.Writer) error, place func(tmp, path string) error) (n int64, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		// "open dir/.t.json.tmp-1234: no such file or directory" would
		// name a file the person never heard of.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return 0, fmt.Errorf("cannot create %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return 0, err
	}
	cw := &countWriter{w: tmp}
	if err = write(cw); err != nil {
		return cw.n, err
	}
	if err = tmp.Sync(); err != nil {
		return cw.n, err
	}
	if err = tmp.Close(); err != nil {
		return cw.n, err
	}
	return cw.n, place(tmp.Name(), path)
}

// linkNew puts the file tmp at path unless a file is there: a hard link
// fails when path exists, which a rename would replace. On a file system
// without hard links it checks first, then renames.
func linkNew(tmp, path string) error {
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		os.Remove(tmp) // path holds the file now; tmp is a second name
		return nil
	case errors.Is(err, fs.ErrExist):
		return existsError(path)
	}
	if _, serr := os.Lstat(path); serr == nil {
		return existsError(path)
	}
	return os.Rename(tmp, path)
}

// existsError says that the file at its path exists already; it is
// fs.ErrExist, without that error's words ("file already exists") after
// its own.
type existsError string

func (e existsError) Error() string        { return string(e) + " exists already" }
func (e existsError) Is(target error) bool { return target == fs.ErrExist }

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// existsHint is the fix for an output file that exists.
const existsHint = "choose another name with -o FILE, or remove the old file first"

// checkNewFile refuses, before anything is asked of the node, an output
// path where a file exists or whose directory does not, naming the path as
// the person gave it.
func checkNewFile(path string) error {
	if st, err := os.Lstat(path); err == nil && st.IsDir() {
		return failf("give the path of a file to write, such as "+filepath.Join(path, "out"), "%s is a directory", path)
	} else if err == nil {
		return failf(existsHint, "%s exists already", path)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return failf("create the directory first, or choose another path with -o FILE", "cannot write %s: there is no directory %s", path, dir)
	case err != nil:
		return failf("choose another path with -o FILE", "cannot write %s: %v", path, unwrapPath(err))
	case !st.IsDir():
		return failf("choose another path with -o FILE", "cannot write %s: %s is not a directory", path, dir)
	}
	return nil
}
