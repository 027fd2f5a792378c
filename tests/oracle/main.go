// Command oracle answers the differential suites of tests/fuzz.rs, one JSON
// object per line on stdin, one answer per line on stdout:
//
//	{"c": CONSTRAINT, "v": [TAG, ...]}
//	  -> {"ok": NewConstraint(c) succeeded, "err": its error,
//	      "tags": [{"counts": the tag counts as Crossplane's resolver counts
//	                tags, "check": c.Check(tag) when it counts}],
//	      "v1ok": ..., "v1": [...]  (the same with Masterminds v1.5.0)}
//	{"p": PATTERN, "n": NAME}
//	  -> {"matched": path.Match's bool, "bad": it returned ErrBadPattern}
//	{"info": true}
//	  -> {"v3": the Masterminds/semver/v3 version linked, "v1": the v1 one}
//
// The same source builds against v3.5.0 (go.mod) and v3.4.0 (v3.4.mod,
// `go build -modfile=v3.4.mod`): one binary cannot link two versions of
// one module path, so tests/fuzz.rs builds and runs one oracle for each.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path"
	"runtime/debug"
	"strings"

	semverv1 "github.com/Masterminds/semver"
	"github.com/Masterminds/semver/v3"
)

type request struct {
	C    *string  `json:"c"`
	V    []string `json:"v"`
	P    *string  `json:"p"`
	N    string   `json:"n"`
	Info bool     `json:"info"`
}

type tag struct {
	Counts bool `json:"counts"`
	Check  bool `json:"check"`
}

type constraintAnswer struct {
	OK   bool   `json:"ok"`
	Err  string `json:"err,omitempty"`
	Tags []tag  `json:"tags"`
	V1OK bool   `json:"v1ok"`
	V1   []tag  `json:"v1"`
}

type globAnswer struct {
	Matched bool `json:"matched"`
	Bad     bool `json:"bad"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for in.Scan() {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			os.Stderr.WriteString("oracle: bad request: " + err.Error() + "\n")
			os.Exit(2)
		}
		var answer any
		switch {
		case req.C != nil:
			answer = constraint(*req.C, req.V)
		case req.Info:
			answer = info()
		case req.P != nil:
			matched, err := path.Match(*req.P, req.N)
			answer = globAnswer{Matched: matched, Bad: errors.Is(err, path.ErrBadPattern)}
		default:
			os.Stderr.WriteString("oracle: request with neither c nor p\n")
			os.Exit(2)
		}
		if err := enc.Encode(answer); err != nil {
			os.Exit(3)
		}
		if err := out.Flush(); err != nil {
			os.Exit(3)
		}
	}
}

func constraint(c string, tags []string) constraintAnswer {
	answer := constraintAnswer{Tags: make([]tag, len(tags)), V1: make([]tag, len(tags))}
	parsed, err := semver.NewConstraint(c)
	answer.OK = err == nil
	if err != nil {
		answer.Err = err.Error()
	}
	for i, t := range tags {
		// As findDependencyVersionToInstall in Crossplane's resolver: a tag
		// counts if NewVersion parses it and its canonical form is the tag
		// without one leading v.
		v, err := semver.NewVersion(t)
		if err != nil || v.String() != strings.TrimPrefix(v.Original(), "v") {
			continue
		}
		answer.Tags[i].Counts = true
		if parsed != nil {
			answer.Tags[i].Check = parsed.Check(v)
		}
	}
	old, err := semverv1.NewConstraint(c)
	answer.V1OK = err == nil
	for i, t := range tags {
		v, err := semverv1.NewVersion(t)
		if err != nil || v.String() != strings.TrimPrefix(v.Original(), "v") {
			continue
		}
		answer.V1[i].Counts = true
		if old != nil {
			answer.V1[i].Check = old.Check(v)
		}
	}
	return answer
}

// info names the Masterminds versions this binary linked, so a test can
// tell which library answered.
func info() map[string]string {
	linked := map[string]string{}
	build, ok := debug.ReadBuildInfo()
	if !ok {
		return linked
	}
	for _, dep := range build.Deps {
		switch dep.Path {
		case "github.com/Masterminds/semver/v3":
			linked["v3"] = dep.Version
		case "github.com/Masterminds/semver":
			linked["v1"] = dep.Version
		}
	}
	return linked
}
