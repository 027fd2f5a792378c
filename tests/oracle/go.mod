// The differential oracle for tests/fuzz.rs: Masterminds/semver and Go's
// path.Match, answering JSON lines. Built by the test with `go build`.
// v3.4.mod is this file with v3.4.0 for v3.5.0 (built with -modfile).
module function-ecr-packages/oracle

go 1.22

require (
	// Crossplane v2.0 to v2.2 (src/version/v1.rs, Dialect::V1_5).
	github.com/Masterminds/semver v1.5.0
	// Crossplane v2.4 on (Dialect::V3_5; v3.5.0 adds MaxConstraintLen and
	// MaxConstraintGroups and otherwise behaves as v3.4.0).
	github.com/Masterminds/semver/v3 v3.5.0
)
