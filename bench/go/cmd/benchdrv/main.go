// Command benchdrv is scripts/bench's driver. Subcommands:
//
//	catalog  -n N -namespace NS -account A -region R -out DIR
//	         a generated catalog of N packages: DIR/seed.json (for
//	         scripts/localecr.py seed), DIR/xr.json, DIR/input.json
//	gen      -address HOST:PORT -dir DIR
//	         drives function-ecr-packages wave by wave (as Crossplane and the
//	         package manager would: what a call desires is observed by the
//	         next, Installed/Healthy/Ready) until the XR is Ready, then writes
//	         the late-reconcile request DIR/ours.bin, the same state as
//	         function-patch-and-transform's request DIR/pt.bin, the
//	         function-sequencer input DIR/sequencer-input.json
//	load     -address HOST:PORT -request FILE -c C -seconds S
//	         replays a binary RunFunctionRequest, C calls in flight over one
//	         connection, and prints one JSON line (calls, errors, rps, p50)
//	pipeline -address A1,A2[,A3] -request FILE -input2 F -input3 F -c C -seconds S
//	         each call goes through the functions in order, as Crossplane
//	         runs a pipeline: the next request is the observed state, the
//	         previous response's desired state and context, and its own input
//
// load and pipeline send pre-encoded bytes (no re-marshalling per call) and
// read responses as bytes, so the driver's own cost stays small next to the
// server's; responses are decoded and checked (no Fatal result) during the
// warm-up calls only.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	method     = "/apiextensions.fn.proto.v1.FunctionRunnerService/RunFunction"
	maxMessage = 64 << 20
	// The XR may list at most this many packages (src/spec/limits.rs
	// MAX_PACKAGES); larger catalogs reach N through dependencies.
	maxListed = 500
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: benchdrv catalog|gen|load|pipeline [flags]"))
	}
	var err error
	switch os.Args[1] {
	case "catalog":
		err = catalog(os.Args[2:])
	case "gen":
		err = gen(os.Args[2:])
	case "load":
		err = load(os.Args[2:], false)
	case "pipeline":
		err = load(os.Args[2:], true)
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchdrv:", err)
	os.Exit(1)
}

type obj = map[string]any

// ---------------------------------------------------------------- catalog

// catalog writes a catalog of n packages: one family provider, providers
// depending on it, functions, and configurations each depending on one
// provider and one function (the shapes of examples/catalog.json). The XR
// lists configurations first, then the rest, at most maxListed of them; the
// function resolves the others as dependencies, so n packages are composed.
func catalog(args []string) error {
	fs := flag.NewFlagSet("catalog", flag.ExitOnError)
	n := fs.Int("n", 3, "packages")
	ns := fs.String("namespace", "bench", "repository namespace")
	account := fs.String("account", "123456789012", "")
	region := fs.String("region", "us-east-1", "")
	out := fs.String("out", ".", "")
	_ = fs.Parse(args)
	if *n < 2 {
		return errors.New("-n must be at least 2")
	}
	rest := *n - 1
	nc := rest / 3
	nf := (rest - nc) / 2
	np := rest - nc - nf
	family := *ns + "/provider-family"
	provider := func(i int) string { return fmt.Sprintf("%s/provider-%04d", *ns, i) }
	function := func(i int) string { return fmt.Sprintf("%s/function-%04d", *ns, i) }
	configuration := func(i int) string { return fmt.Sprintf("%s/configuration-%04d", *ns, i) }
	meta := func(kind, repo, api string, depends []any) obj {
		name := repo[strings.LastIndex(repo, "/")+1:]
		return obj{
			"apiVersion": api, "kind": kind,
			"metadata": obj{"name": name, "annotations": obj{
				"meta.crossplane.io/maintainer":  "Bench <bench@example.org>",
				"meta.crossplane.io/description": name + ", seeded by scripts/bench",
			}},
			"spec": obj{"crossplane": obj{"version": ">=v1.14.0-0"}, "dependsOn": depends},
		}
	}
	up := func(repo string) string { return "xpkg.upbound.io/" + repo }
	images := []any{obj{"repository": family, "tags": []any{"v2.1.0", "v2.2.0"},
		"package": meta("Provider", family, "meta.pkg.crossplane.io/v1", []any{})}}
	var listed []any
	for i := 0; i < nc; i++ {
		images = append(images, obj{"repository": configuration(i), "tags": []any{"v1.0.0", "v1.1.0"},
			"package": meta("Configuration", configuration(i), "meta.pkg.crossplane.io/v1", []any{
				obj{"provider": up(provider(i)), "version": ">=v2.1.0"},
				obj{"function": up(function(i)), "version": ">=v0.8.0"},
			})})
		listed = append(listed, obj{"kind": "Configuration", "repository": configuration(i), "version": ">=v1.0.0"})
	}
	for i := 0; i < np; i++ {
		images = append(images, obj{"repository": provider(i), "tags": []any{"v2.1.0", "v2.2.0"},
			"package": meta("Provider", provider(i), "meta.pkg.crossplane.io/v1", []any{
				obj{"provider": up(family), "version": ">= 0.0.0"},
			})})
		listed = append(listed, obj{"kind": "Provider", "repository": provider(i), "version": ">=v2.0.0"})
	}
	for i := 0; i < nf; i++ {
		images = append(images, obj{"repository": function(i), "tags": []any{"v0.8.1", "v0.8.2"},
			"package": meta("Function", function(i), "meta.pkg.crossplane.io/v1beta1", []any{})})
		listed = append(listed, obj{"kind": "Function", "repository": function(i), "version": "v0.8.2"})
	}
	listed = append(listed, obj{"kind": "Provider", "repository": family, "version": "v2.2.0"})
	if len(listed) > maxListed {
		listed = listed[:maxListed]
	}
	oidc := fmt.Sprintf("oidc.eks.%s.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE", *region)
	xr := obj{
		"apiVersion": "ecr.platform.example.org/v1alpha1", "kind": "XEcrPackages",
		"metadata": obj{"name": fmt.Sprintf("bench-%d", *n), "uid": fmt.Sprintf("00000000-0000-4000-8000-%012d", *n)},
		"spec": obj{
			"registry": obj{"accountId": *account, "region": *region},
			"packages": listed,
			"iam": obj{"enabled": true, "identity": "IRSA", "oidcProvider": oidc,
				"nodeRoleNames": []any{"eks-node-role"}},
		},
	}
	// examples/composition.yaml's input, for the local ECR's account and
	// region (examples/load.rs builds the same).
	input := obj{
		"apiVersion": "ecr.fn.crossplane.io/v1beta1", "kind": "Input",
		"strategy": "Rewrite",
		"mirrors": []any{
			obj{"upstream": "xpkg.upbound.io/", "repositoryPrefix": ""},
			obj{"upstream": "xpkg.crossplane.io/", "repositoryPrefix": ""},
		},
		"resolveDependencies": true,
		"pinDigests":          false,
		"allowedRegistries":   []any{obj{"accountId": *account, "region": *region}},
		"iam": obj{
			"enabled": true, "managedResources": "Cluster", "providerConfigName": "default",
			"allowedOidcProviders": []any{oidc},
			"allowedNodeRoleNames": []any{"eks-node-role"},
		},
		"ttl": "60s",
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for name, v := range map[string]any{"seed.json": obj{"images": images}, "xr.json": xr, "input.json": input} {
		if err := writeJSON(filepath.Join(*out, name), v); err != nil {
			return err
		}
	}
	fmt.Printf(`{"packages":%d,"listed":%d,"providers":%d,"functions":%d,"configurations":%d}`+"\n",
		*n, len(listed), np+1, nf, nc)
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func readJSON(path string) (obj, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v obj
	return v, json.Unmarshal(b, &v)
}

// ---------------------------------------------------------------- gen

func dial(address string) (*grpc.ClientConn, error) {
	return grpc.NewClient(address,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)))
}

func toStruct(v obj) (*structpb.Struct, error) { return structpb.NewStruct(v) }

// request is what Crossplane sends the first function of the pipeline: the
// XR as observed (with the status the function last wrote), the composed
// resources as observed, an empty desired state, and the input.
func request(xr obj, observed map[string]obj, input obj, tag string) (*fnv1.RunFunctionRequest, error) {
	composite, err := toStruct(xr)
	if err != nil {
		return nil, err
	}
	in, err := toStruct(input)
	if err != nil {
		return nil, err
	}
	resources := map[string]*fnv1.Resource{}
	for name, o := range observed {
		s, err := toStruct(o)
		if err != nil {
			return nil, err
		}
		resources[name] = &fnv1.Resource{Resource: s}
	}
	return &fnv1.RunFunctionRequest{
		Meta:     &fnv1.RequestMeta{Tag: tag},
		Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: composite}, Resources: resources},
		Desired:  &fnv1.State{},
		Input:    in,
	}, nil
}

// settled is the status a controller reports once it has acted on o
// (examples/load.rs's settled). A package gets what Crossplane v2.2 writes
// once a revision of its spec.package is active and healthy
// (currentIdentifier, conditions with observedGeneration), in one step
// rather than Crossplane's two; o gets the API server's first generation.
func settled(o obj) obj {
	api, _ := o["apiVersion"].(string)
	kind, _ := o["kind"].(string)
	cond := func(t, reason string) obj { return obj{"type": t, "status": "True", "reason": reason} }
	switch {
	case strings.HasPrefix(api, "pkg.crossplane.io/") && kind != "ImageConfig":
		meta, _ := o["metadata"].(obj)
		if meta == nil {
			meta = obj{}
			o["metadata"] = meta
		}
		meta["generation"] = 1
		spec, _ := o["spec"].(obj)
		installed, healthy := cond("Installed", "ActivePackageRevision"), cond("Healthy", "HealthyPackageRevision")
		installed["observedGeneration"], healthy["observedGeneration"] = 1, 1
		return obj{"currentIdentifier": spec["package"], "conditions": []any{installed, healthy}}
	case strings.HasPrefix(api, "apiextensions.crossplane.io/") && kind == "ManagedResourceActivationPolicy":
		// Crossplane's activation controller with every named definition
		// installed (tests/e2e/render.py's fake): each is activated and
		// listed, sorted, and the policy is Healthy.
		spec, _ := o["spec"].(obj)
		asked, _ := spec["activate"].([]any)
		activated := []string{}
		for _, a := range asked {
			if name, ok := a.(string); ok && !strings.Contains(name, "*") {
				activated = append(activated, name)
			}
		}
		sort.Strings(activated)
		listed := make([]any, len(activated))
		for i, name := range activated {
			listed[i] = name
		}
		return obj{"activated": listed, "conditions": []any{cond("Healthy", "Running")}}
	case strings.Contains(api, "aws."):
		return obj{"conditions": []any{cond("Synced", "ReconcileSuccess"), cond("Ready", "Available")}}
	}
	return obj{}
}

func fatal(rsp *fnv1.RunFunctionResponse) error {
	for _, r := range rsp.GetResults() {
		if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			return fmt.Errorf("fatal result: %s", r.GetMessage())
		}
	}
	return nil
}

func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	address := fs.String("address", "", "function-ecr-packages, insecure")
	dir := fs.String("dir", ".", "catalog folder (xr.json, input.json); requests are written there")
	waves := fs.Int("max-waves", 40, "")
	_ = fs.Parse(args)
	xr, err := readJSON(filepath.Join(*dir, "xr.json"))
	if err != nil {
		return err
	}
	input, err := readJSON(filepath.Join(*dir, "input.json"))
	if err != nil {
		return err
	}
	conn, err := dial(*address)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := fnv1.NewFunctionRunnerServiceClient(conn)
	call := func(req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		rsp, err := client.RunFunction(ctx, req)
		if err != nil {
			return nil, err
		}
		return rsp, fatal(rsp)
	}
	observed := map[string]obj{}
	ready := false
	wave := 0
	for wave = 1; wave <= *waves; wave++ {
		req, err := request(xr, observed, input, fmt.Sprintf("gen-%d", wave))
		if err != nil {
			return err
		}
		rsp, err := call(req)
		if err != nil {
			return fmt.Errorf("wave %d: %w", wave, err)
		}
		// What Crossplane does with it: the XR takes the desired status,
		// desired resources exist and their controllers report them ready.
		if st, ok := rsp.GetDesired().GetComposite().GetResource().AsMap()["status"].(obj); ok {
			status, _ := xr["status"].(obj)
			if status == nil {
				status = obj{}
			}
			for k, v := range st {
				status[k] = v
			}
			xr["status"] = status
		}
		next := map[string]obj{}
		for name, r := range rsp.GetDesired().GetResources() {
			o := r.GetResource().AsMap()
			o["status"] = settled(o)
			next[name] = o
		}
		composite := rsp.GetDesired().GetComposite()
		nowReady := len(next) > 0 && (composite == nil || composite.GetReady() != fnv1.Ready_READY_FALSE)
		same := len(next) == len(observed)
		for name := range next {
			if _, ok := observed[name]; !ok {
				same = false
			}
		}
		observed = next
		if nowReady && same && ready {
			break
		}
		ready = nowReady
	}
	if wave > *waves {
		return fmt.Errorf("the XR was not Ready after %d waves", *waves)
	}
	late, err := request(xr, observed, input, "bench")
	if err != nil {
		return err
	}
	rsp, err := call(late)
	if err != nil {
		return fmt.Errorf("late reconcile: %w", err)
	}
	if c := rsp.GetDesired().GetComposite(); c != nil && c.GetReady() == fnv1.Ready_READY_FALSE {
		return errors.New("late reconcile: the XR is not Ready")
	}
	if err := writeMessage(filepath.Join(*dir, "ours"), late); err != nil {
		return err
	}
	desired := map[string]obj{}
	for name, r := range rsp.GetDesired().GetResources() {
		desired[name] = r.GetResource().AsMap()
	}
	pt := patchAndTransformInput(xr, desired)
	ptReq, err := request(xr, observed, pt, "bench")
	if err != nil {
		return err
	}
	if err := writeMessage(filepath.Join(*dir, "pt"), ptReq); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(*dir, "pt-input.json"), pt); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(*dir, "sequencer-input.json"), sequencerInput(xr, desired)); err != nil {
		return err
	}
	fmt.Printf(`{"waves":%d,"composed":%d,"request_bytes":%d,"pt_request_bytes":%d}`+"\n",
		wave, len(observed), proto.Size(late), proto.Size(ptReq))
	return nil
}

func writeMessage(base string, m proto.Message) error {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".bin", b, 0o644); err != nil {
		return err
	}
	j, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(base+".json", j, 0o644)
}

// ---------------------------------------------------------------- pipeline inputs

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func join(path, key string) string {
	if plainKey.MatchString(key) {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	return path + "[" + key + "]"
}

// leaves calls f with the field path and value of every string in v.
func leaves(path string, v any, f func(string, string)) {
	switch v := v.(type) {
	case obj:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			leaves(join(path, k), v[k], f)
		}
	case []any:
		for i, e := range v {
			leaves(fmt.Sprintf("%s[%d]", path, i), e, f)
		}
	case string:
		f(path, v)
	}
}

// patchAndTransformInput composes the objects function-ecr-packages
// composed, with function-patch-and-transform: each one a base (the object
// as composed) and a FromCompositeFieldPath patch for every string field of
// it whose value the XR holds (spec: repositories, versions, region,
// account, OIDC provider, node roles; status: what the function resolved),
// so P&T reads the XR and patches as it would in a hand-written Composition
// for the same objects. Packages get a Healthy readiness check.
func patchAndTransformInput(xr obj, desired map[string]obj) obj {
	from := map[string]string{}
	for _, top := range []string{"spec", "status"} {
		leaves(top, xr[top], func(path, value string) {
			if len(value) < 4 || value == "True" || value == "False" {
				return
			}
			if _, ok := from[value]; !ok {
				from[value] = path
			}
		})
	}
	names := make([]string, 0, len(desired))
	for name := range desired {
		names = append(names, name)
	}
	sort.Strings(names)
	resources := make([]any, 0, len(names))
	for _, name := range names {
		base := obj{}
		for k, v := range desired[name] {
			if k != "status" {
				base[k] = v
			}
		}
		patches := []any{}
		leaves("", base, func(path, value string) {
			if path == "apiVersion" || path == "kind" {
				return
			}
			if src, ok := from[value]; ok {
				patches = append(patches, obj{"type": "FromCompositeFieldPath", "fromFieldPath": src, "toFieldPath": path})
			}
		})
		r := obj{"name": name, "base": base, "patches": patches}
		if api, _ := base["apiVersion"].(string); strings.HasPrefix(api, "pkg.crossplane.io/") && base["kind"] != "ImageConfig" {
			r["readinessChecks"] = []any{obj{"type": "MatchCondition", "matchCondition": obj{"type": "Healthy", "status": "True"}}}
		}
		resources = append(resources, r)
	}
	return obj{"apiVersion": "pt.fn.crossplane.io/v1beta1", "kind": "Resources", "resources": resources}
}

// sequencerInput orders the composed objects as function-ecr-packages gates
// them: one rule per package, its sequence the IAM and ImageConfig objects,
// then the packages it depends on (the XR's status.packages[].dependsOn, as
// the function resolved them), then the package. (A sequence also orders
// its own middle entries; the function does not, which only makes the
// sequencer's work no smaller.)
func sequencerInput(xr obj, desired map[string]obj) obj {
	var first []string
	byName := map[string]string{}
	for name, o := range desired {
		api, _ := o["apiVersion"].(string)
		if strings.HasPrefix(api, "pkg.crossplane.io/") && o["kind"] != "ImageConfig" {
			meta, _ := o["metadata"].(obj)
			object, _ := meta["name"].(string)
			byName[object] = name
		} else {
			first = append(first, name)
		}
	}
	sort.Strings(first)
	status, _ := xr["status"].(obj)
	packages, _ := status["packages"].([]any)
	rules := []any{}
	for _, p := range packages {
		p, _ := p.(obj)
		name, _ := p["name"].(string)
		resource, ok := byName[name]
		if !ok {
			continue
		}
		seq := []any{}
		for _, f := range first {
			seq = append(seq, f)
		}
		deps, _ := p["dependsOn"].([]any)
		for _, d := range deps {
			if d, ok := d.(string); ok && byName[d] != "" {
				seq = append(seq, byName[d])
			}
		}
		rules = append(rules, obj{"sequence": append(seq, resource)})
	}
	return obj{"apiVersion": "sequencer.fn.crossplane.io/v1beta1", "kind": "Input", "rules": rules}
}

// ---------------------------------------------------------------- load

// raw passes pre-encoded messages through gRPC untouched.
type raw struct{}

func (raw) Name() string { return "proto" }
func (raw) Marshal(v any) ([]byte, error) {
	return *(v.(*[]byte)), nil
}
func (raw) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append((*(v.(*[]byte)))[:0], data...)
	return nil
}

// field returns the bytes of the last length-delimited field num of a
// message (proto3 merge semantics), or nil.
func field(msg []byte, num protowire.Number) []byte {
	var found []byte
	for len(msg) > 0 {
		n, t, l := protowire.ConsumeTag(msg)
		if l < 0 {
			return found
		}
		msg = msg[l:]
		if n == num && t == protowire.BytesType {
			v, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return found
			}
			found = v
			msg = msg[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(n, t, msg)
		if m < 0 {
			return found
		}
		msg = msg[m:]
	}
	return found
}

func appendField(b []byte, num protowire.Number, v []byte) []byte {
	if v == nil {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

type stage struct {
	conn  *grpc.ClientConn
	input []byte // encoded google.protobuf.Struct, or nil
}

func load(args []string, pipeline bool) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	addresses := fs.String("address", "", "HOST:PORT (pipeline: comma-separated, in order)")
	requestFile := fs.String("request", "", "binary RunFunctionRequest (pipeline: the first function's)")
	input2 := fs.String("input2", "", "pipeline: JSON input of the second function (none if empty)")
	input3 := fs.String("input3", "", "pipeline: JSON input of the third function (none if empty)")
	concurrency := fs.Int("c", 1, "calls in flight")
	seconds := fs.Float64("seconds", 5, "")
	warm := fs.Int("warm", 3, "checked calls before the measured ones")
	_ = fs.Parse(args)
	req, err := os.ReadFile(*requestFile)
	if err != nil {
		return err
	}
	var stages []stage
	for i, a := range strings.Split(*addresses, ",") {
		conn, err := dial(a)
		if err != nil {
			return err
		}
		defer conn.Close()
		s := stage{conn: conn}
		file := map[int]string{1: *input2, 2: *input3}[i]
		if pipeline && file != "" {
			in, err := readJSON(file)
			if err != nil {
				return err
			}
			st, err := toStruct(in)
			if err != nil {
				return err
			}
			if s.input, err = proto.Marshal(st); err != nil {
				return err
			}
		}
		stages = append(stages, s)
	}
	if !pipeline && len(stages) != 1 {
		return errors.New("load takes one address")
	}
	meta := field(req, 1)
	observed := field(req, 2)
	// Objects desired by the last stage, counted in the warm-up.
	desiredCount := -1
	// One request through every stage.
	run := func(ctx context.Context, check bool) error {
		in := req
		var out []byte
		for i, s := range stages {
			if i > 0 {
				// What Crossplane sends the next function: meta, the same
				// observed state, the desired state and context so far, and
				// that function's input.
				next := make([]byte, 0, len(observed)+len(out)+len(s.input)+64)
				next = appendField(next, 1, meta)
				next = appendField(next, 2, observed)
				desired := field(out, 2)
				if desired == nil {
					desired = []byte{}
				}
				next = appendField(next, 3, desired)
				next = appendField(next, 4, s.input)
				next = appendField(next, 5, field(out, 4))
				in = next
			}
			out = nil
			if err := s.conn.Invoke(ctx, method, &in, &out, grpc.ForceCodec(raw{})); err != nil {
				return fmt.Errorf("stage %d: %w", i+1, err)
			}
			if check {
				var rsp fnv1.RunFunctionResponse
				if err := proto.Unmarshal(out, &rsp); err != nil {
					return fmt.Errorf("stage %d: %w", i+1, err)
				}
				if err := fatal(&rsp); err != nil {
					return fmt.Errorf("stage %d: %w", i+1, err)
				}
				desiredCount = len(rsp.GetDesired().GetResources())
			}
		}
		return nil
	}
	for i := 0; i < *warm; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		err := run(ctx, true)
		cancel()
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	if *seconds <= 0 {
		fmt.Printf(`{"calls":0,"errors":0,"warm":%d,"desired":%d}`+"\n", *warm, desiredCount)
		return nil
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      int
		firstErr  error
		wg        sync.WaitGroup
	)
	started := time.Now()
	deadline := started.Add(time.Duration(*seconds * float64(time.Second)))
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			var firstBad error
			for time.Now().Before(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				t := time.Now()
				err := run(ctx, false)
				cancel()
				if err != nil {
					bad++
					if firstBad == nil {
						firstBad = err
					}
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			errs += bad
			if firstErr == nil {
				firstErr = firstBad
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(started)
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	at := func(q float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		i := int(float64(len(latencies))*q+0.999999) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(latencies) {
			i = len(latencies) - 1
		}
		return float64(latencies[i].Microseconds()) / 1000
	}
	msg := ""
	if firstErr != nil {
		msg = firstErr.Error()
	}
	line, _ := json.Marshal(obj{
		"calls": len(latencies), "errors": errs, "first_error": msg,
		"seconds": elapsed.Seconds(), "rps": float64(len(latencies)) / elapsed.Seconds(),
		"p50_ms": at(0.5), "p99_ms": at(0.99), "concurrency": *concurrency, "stages": len(stages),
		"desired": desiredCount,
	})
	fmt.Println(string(line))
	if len(latencies) == 0 {
		return fmt.Errorf("no call succeeded: %v", firstErr)
	}
	return nil
}
