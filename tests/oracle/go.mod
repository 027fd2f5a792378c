// The differential oracle for tests/fuzz.rs: Masterminds/semver and Go's
// path.Match, answering JSON lines. Built by the test with `go build`.
module function-ecr-packages/oracle

go 1.22

require (
	// Crossplane v2.0 to v2.2 still import the v1 module; answered for
	// information only, the test reports how often it disagrees.
	github.com/Masterminds/semver v1.5.0
	// Crossplane's package manager from v2.3 on (v2.3 pins v3.4.0, main
	// pins v3.5.0, which adds MaxConstraintLen and MaxConstraintGroups and
	// otherwise behaves as v3.4.0). src/version reproduces this one.
	github.com/Masterminds/semver/v3 v3.5.0
)
