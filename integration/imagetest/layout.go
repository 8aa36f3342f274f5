// Package imagetest reproduces the file layout of the gateway image (deploy/Dockerfile) in a
// directory, from the Dockerfile's own COPY lines and its build-context ignore file
// (deploy/Dockerfile.dockerignore, matched with the library Docker uses), so a test can start
// real Traefik on exactly what the image would hold.
package imagetest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Dockerfile is what the layout needs of deploy/Dockerfile.
type Dockerfile struct {
	From    string
	Workdir string
	Copies  []Copy
	Cmd     []string
}

// Copy is one `COPY <src>... <dest>` line.
type Copy struct {
	Sources []string
	Dest    string
}

// ParseDockerfile reads the instructions the layout uses (FROM, WORKDIR, COPY, CMD in JSON
// form) and refuses what it does not reproduce (ADD, COPY flags, RUN), so the Dockerfile
// cannot grow a step this test would silently skip.
func ParseDockerfile(file string) (Dockerfile, error) {
	var d Dockerfile
	f, err := os.Open(file)
	if err != nil {
		return d, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			return d, fmt.Errorf("%s:%d: line continuations are not reproduced", file, n)
		}
		instr, rest, _ := strings.Cut(line, " ")
		fields := strings.Fields(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			d.From = rest
		case "WORKDIR":
			d.Workdir = rest
		case "COPY":
			if len(fields) < 2 || strings.HasPrefix(fields[0], "--") || strings.HasPrefix(fields[0], "[") {
				return d, fmt.Errorf("%s:%d: only `COPY <src>... <dest>` is reproduced", file, n)
			}
			d.Copies = append(d.Copies, Copy{Sources: fields[:len(fields)-1], Dest: fields[len(fields)-1]})
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &d.Cmd); err != nil {
				return d, fmt.Errorf("%s:%d: CMD must be in JSON form: %v", file, n, err)
			}
		default:
			return d, fmt.Errorf("%s:%d: instruction %s is not reproduced by imagetest", file, n, instr)
		}
	}
	return d, sc.Err()
}

// Context lists the files of the build context under root that the ignore file lets through
// (slash-separated, relative to root), as Docker filters the context it sends.
func Context(root, ignoreFile string) ([]string, error) {
	f, err := os.Open(ignoreFile)
	if err != nil {
		return nil, err
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, err
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if e.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		excluded, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if !excluded {
			files = append(files, rel)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// Build copies the context files under root into dir as the COPY lines place them in the
// image (dir stands for the image's /) and returns the image paths written.
func Build(d Dockerfile, root string, context []string, dir string) ([]string, error) {
	var written []string
	for _, c := range d.Copies {
		for _, src := range c.Sources {
			src = strings.TrimSuffix(path.Clean(src), "/")
			var matched []string
			for _, f := range context {
				if f == src || strings.HasPrefix(f, src+"/") {
					matched = append(matched, f)
				}
			}
			if len(matched) == 0 {
				return written, fmt.Errorf("COPY %s: nothing in the build context (excluded by the ignore file?)", src)
			}
			for _, f := range matched {
				var dst string
				switch {
				case f != src: // a directory's content goes under dest
					dst = path.Join(c.Dest, strings.TrimPrefix(f, src+"/"))
				case strings.HasSuffix(c.Dest, "/"):
					dst = path.Join(c.Dest, path.Base(f))
				default:
					dst = c.Dest
				}
				b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
				if err != nil {
					return written, err
				}
				out := filepath.Join(dir, filepath.FromSlash(dst))
				if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
					return written, err
				}
				if err := os.WriteFile(out, b, 0o644); err != nil {
					return written, err
				}
				written = append(written, dst)
			}
		}
	}
	sort.Strings(written)
	return written, nil
}
