// go.mod with Masterminds/semver/v3 v3.4.0 (Crossplane v2.3,
// Dialect::V3_4) for v3.5.0: tests/fuzz.rs builds the oracle a second time
// with `go build -modfile=v3.4.mod`, since one binary cannot link both.
module function-ecr-packages/oracle

go 1.22

require (
	github.com/Masterminds/semver v1.5.0
	github.com/Masterminds/semver/v3 v3.4.0
)
