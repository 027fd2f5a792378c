"""Interop: the official Crossplane Python SDK's generated stubs, for both
protocol versions, against the function's gRPC server (the real binary).

These check the wire, not what the function composes: the XR below is not one
the function acts on (its spec names no packages), so no test here reaches a
registry, and whatever results the function reports about it are its own
business. What must hold on the wire: the tag is echoed, a TTL is set, and
the desired state sent comes back unchanged."""

from __future__ import annotations

import copy
import subprocess

import grpc
import pytest
from crossplane.function.proto.v1 import run_function_pb2 as v1_pb
from crossplane.function.proto.v1 import run_function_pb2_grpc as v1_grpc
from crossplane.function.proto.v1beta1 import run_function_pb2 as v1beta1_pb
from crossplane.function.proto.v1beta1 import run_function_pb2_grpc as v1beta1_grpc
from grpc_reflection.v1alpha import reflection_pb2

from fnharness import client_credentials, function_env, health_check

VERSIONS = {
    "v1": (v1_pb, v1_grpc),
    "v1beta1": (v1beta1_pb, v1beta1_grpc),
}
SERVICES = [f"apiextensions.fn.proto.{v}.FunctionRunnerService" for v in VERSIONS]

COMPOSITE = {
    "apiVersion": "platform.example.org/v1alpha1",
    "kind": "XEcrPackages",
    "metadata": {"name": "platform", "uid": "5b6c1a55-0d2c-4a7c-9d8e-3f0d2a1b7c11"},
    "spec": {
        "note": "wire test: no packages",
        "nested": {"list": [1, "two", {"three": 3.5}], "empty": {}},
        "replicas": 2,
        "enabled": True,
        "nothing": None,
    },
    "status": {"conditions": [{"type": "Ready", "status": "False"}]},
}
COMPOSED = {
    "apiVersion": "pkg.crossplane.io/v1",
    "kind": "Provider",
    "metadata": {"name": "provider-family-aws", "labels": {"app": "interop"}},
    "spec": {
        "package": "123456789012.dkr.ecr.us-east-1.amazonaws.com/upbound/provider-family-aws:v1.1.0",
        "packagePullPolicy": "IfNotPresent",
        "skipDependencyResolution": True,
        "revisionHistoryLimit": 1.5,
    },
}


def make_request(pb, tag: str = "interop-tag-42", big: int = 0):
    req = pb.RunFunctionRequest()
    req.meta.tag = tag
    req.observed.composite.resource.update(COMPOSITE)
    desired_xr = copy.deepcopy(COMPOSITE)
    if big:
        desired_xr["spec"]["padding"] = "x" * big
    req.desired.composite.resource.update(desired_xr)
    req.desired.composite.connection_details["endpoint"] = b"\x00binary\xffsecret"
    composed = req.desired.resources["provider-family-aws"]
    composed.resource.update(COMPOSED)
    composed.ready = pb.READY_TRUE
    return req


def check_passthrough(pb, req, resp):
    assert resp.meta.tag == req.meta.tag
    assert resp.meta.HasField("ttl"), "meta.ttl is set"
    assert resp.meta.ttl.seconds > 0 or resp.meta.ttl.nanos > 0
    # What was desired comes back exactly: the composite, and each composed
    # resource the request carried.
    assert resp.desired.composite == req.desired.composite
    for name, res in req.desired.resources.items():
        assert name in resp.desired.resources, f"composed resource {name} dropped"
        assert resp.desired.resources[name] == res


def run(channel, version, req, timeout=10):
    pb, stubs = VERSIONS[version]
    return stubs.FunctionRunnerServiceStub(channel).RunFunction(req, timeout=timeout)


# ------------------------------------------------------------------ insecure


@pytest.fixture
def insecure_server(function_server):
    return function_server()


@pytest.mark.parametrize("version", list(VERSIONS))
def test_insecure_passthrough(insecure_server, version):
    pb, _ = VERSIONS[version]
    req = make_request(pb, tag=f"tag-{version}")
    resp = run(insecure_server.channel(), version, req)
    check_passthrough(pb, req, resp)


def test_both_versions_agree(insecure_server):
    ch = insecure_server.channel()
    a = run(ch, "v1", make_request(v1_pb))
    b = run(ch, "v1beta1", make_request(v1beta1_pb))
    # Same wire format: the v1beta1 answer decodes as the v1 answer.
    assert v1_pb.RunFunctionResponse.FromString(b.SerializeToString()) == a


def test_health_serving(insecure_server):
    ch = insecure_server.channel()
    assert health_check(ch) == 1
    for svc in SERVICES:
        assert health_check(ch, svc) == 1, svc


@pytest.mark.parametrize("reflection", ["v1", "v1alpha"])
def test_reflection_lists_both_versions(insecure_server, reflection):
    ch = insecure_server.channel()
    # v1 and v1alpha reflection messages are wire-identical.
    call = ch.stream_stream(
        f"/grpc.reflection.{reflection}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    responses = list(call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
    names = {s.name for r in responses for s in r.list_services_response.service}
    for svc in SERVICES:
        assert svc in names, names


def test_refuses_to_start_without_certs_or_insecure(function_binary):
    out = subprocess.run([str(function_binary), "--address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0"],
                         capture_output=True, timeout=30, env=function_env())
    assert out.returncode != 0
    err = out.stderr.decode(errors="replace").strip()
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "--insecure" in err and "--tls-certs-dir" in err, err


# ----------------------------------------------------------------- mutual TLS


@pytest.fixture
def tls_server(function_server):
    return function_server(tls=True)


@pytest.mark.parametrize("version", list(VERSIONS))
def test_mtls_passthrough(tls_server, tls_bundle, version):
    pb, _ = VERSIONS[version]
    ch = tls_server.channel(client_credentials(tls_bundle["client"]))
    req = make_request(pb)
    check_passthrough(pb, req, run(ch, version, req))


@pytest.mark.parametrize("server_name", [
    "function-ecr-packages",
    "function-ecr-packages.crossplane-system",
    "function-ecr-packages.crossplane-system.svc.cluster.local",
    "localhost",
])
def test_mtls_server_names(tls_server, tls_bundle, server_name):
    ch = tls_server.channel(client_credentials(tls_bundle["client"]), server_name=server_name)
    req = make_request(v1_pb)
    check_passthrough(v1_pb, req, run(ch, "v1", req))


def test_mtls_by_ip_without_override(tls_server, tls_bundle):
    # The certificate's IP SAN 127.0.0.1 matches the address itself.
    ch = grpc.secure_channel(tls_server.address, client_credentials(tls_bundle["client"]))
    tls_server.channels.append(ch)
    req = make_request(v1_pb)
    check_passthrough(v1_pb, req, run(ch, "v1", req))


def expect_refused(channel):
    with pytest.raises(grpc.RpcError) as err:
        run(channel, "v1", make_request(v1_pb), timeout=5)
    assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED,
                                grpc.StatusCode.PERMISSION_DENIED), err.value
    return err.value


def test_mtls_client_without_certificate_is_refused(tls_server, tls_bundle):
    expect_refused(tls_server.channel(client_credentials(tls_bundle["client"], with_cert=False)))
    # ... while a proper client on the same server still gets through.
    ok = tls_server.channel(client_credentials(tls_bundle["client"]))
    run(ok, "v1", make_request(v1_pb))


def test_mtls_client_from_another_ca_is_refused(tls_server, tls_bundle):
    expect_refused(tls_server.channel(client_credentials(tls_bundle["stranger"])))
    ok = tls_server.channel(client_credentials(tls_bundle["client"]))
    run(ok, "v1", make_request(v1_pb))


def test_mtls_plaintext_client_is_refused(tls_server):
    expect_refused(tls_server.channel())


def test_mtls_server_from_untrusted_ca_is_rejected_by_client(tls_server, tls_bundle):
    # Trusting only the other CA, the client must not accept the server.
    stranger = tls_bundle["stranger"]
    creds = grpc.ssl_channel_credentials(
        root_certificates=(stranger / "own-ca.crt").read_bytes(),
        private_key=(tls_bundle["client"] / "tls.key").read_bytes(),
        certificate_chain=(tls_bundle["client"] / "tls.crt").read_bytes())
    expect_refused(tls_server.channel(creds))


# -------------------------------------------------------------- message size


@pytest.mark.parametrize("version", list(VERSIONS))
def test_request_over_max_recv_message_size(function_server, version):
    server = function_server("--max-recv-message-size", "1")
    pb, _ = VERSIONS[version]
    ch = server.channel()
    big = make_request(pb, big=1024 * 1024 + 4096)
    assert big.ByteSize() > 1024 * 1024
    with pytest.raises(grpc.RpcError) as err:
        run(ch, version, big)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value

    # The server is still fine, on the same channel, for a normal request, and
    # for one just under the limit.
    req = make_request(pb)
    check_passthrough(pb, req, run(ch, version, req))
    under = make_request(pb, big=1024 * 1024 - 8192)
    assert under.ByteSize() < 1024 * 1024
    check_passthrough(pb, under, run(ch, version, under))


def test_default_max_recv_message_size_is_4mib(insecure_server):
    ch = insecure_server.channel(options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)])
    ok = make_request(v1_pb, big=3 * 1024 * 1024)
    check_passthrough(v1_pb, ok, run(ch, "v1", ok))
    too_big = make_request(v1_pb, big=4 * 1024 * 1024 + 4096)
    with pytest.raises(grpc.RpcError) as err:
        run(ch, "v1", too_big)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value
