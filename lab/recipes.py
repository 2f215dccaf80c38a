"""How each stack's artifacts are laid out, built and version-checked (a function of lab.stacks.Stack).

The layout is that of the releases' official tarballs: kubernetes/server/bin/<command>,
etcd-v<ver>-linux-amd64/{etcd,etcdctl[,etcdutl]}, flannel-<ver>-linux-amd64/{flanneld,mk-docker-opts.sh},
cri-dockerd/cri-dockerd. The default stack lives directly in $KUBEPROOF_CACHE/artifacts and builds in
$KUBEPROOF_CACHE/build (where it always has); any other stack under artifacts/stacks/<name> and
build/stacks/<name>, so it never disturbs the default one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kubeproof.lab.go_build import GoBinary, GoWrapper
from kubeproof.lab.pod_images import BUSYBOX_PACKAGE, PAUSE_IMAGE, TEST_IMAGE
from kubeproof.lab.settings import artifacts_dir, build_dir
from kubeproof.lab.stacks import Stack

BUILD_SUPPORT_DIR = Path(__file__).resolve().parent / "build_support"

K8S_MODULE = "k8s.io/kubernetes"
K8S_COMPONENT_BASE_VERSION = "k8s.io/component-base/version"
# kubectl up to 1.19 reads its version from client-go; hack/lib/version.sh stamps both.
K8S_CLIENT_GO_VERSION = "k8s.io/client-go/pkg/version"
# Fixed build date and commit: the same inputs give the same bytes, so the lock can pin sha256.
K8S_BUILD_DATE = "2026-01-01T00:00:00Z"
K8S_GIT_COMMIT = "0" * 40
K8S_COMMANDS: tuple[str, ...] = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "kube-proxy",
)
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging/...; a
# module that requires it must replace them with the matching published releases. The default stack
# names them (v1.34's list); other stacks take them from the release's own go.mod.
K8S_STAGING_MODULES: tuple[str, ...] = (
    "api",
    "apiextensions-apiserver",
    "apimachinery",
    "apiserver",
    "cli-runtime",
    "client-go",
    "cloud-provider",
    "cluster-bootstrap",
    "code-generator",
    "component-base",
    "component-helpers",
    "controller-manager",
    "cri-api",
    "cri-client",
    "csi-translation-lib",
    "dynamic-resource-allocation",
    "endpointslice",
    "externaljwt",
    "kms",
    "kube-aggregator",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "metrics",
    "mount-utils",
    "pod-security-admission",
    "sample-apiserver",
    "sample-cli-plugin",
    "sample-controller",
)
# The release's source, copied into the wrapper (k8s.io/kubernetes is then replaced by it), for
# releases whose module lacks a file their own build generates (v1.19: pkg/generated/openapi).
K8S_SOURCE_DIR = "src/kubernetes"
OPENAPI_GEN_PACKAGE = "k8s.io/kube-openapi/cmd/openapi-gen"
# v1.19's openapi-gen run (build/root/Makefile.generated_files) leaves out these staging modules.
OPENAPI_EXCLUDED_MODULES: tuple[str, ...] = ("k8s.io/code-generator", "k8s.io/sample-apiserver")

FLANNEL_MODULE = "github.com/flannel-io/flannel"
TENCENT_VPC_MODULE = "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc"
CRI_DOCKERD_MODULE = "github.com/Mirantis/cri-dockerd"
# Commit of each tag (the module proxy's .info "Origin"); printed by `cri-dockerd --version`.
CRI_DOCKERD_COMMITS: Mapping[str, str] = {
    "0.3.17": "2104021544064fc73260e6ef9f26fcdc253382ed",
    "0.4.0": "a8698e96cbc06edee82299304d4ea086dc2cd420",
}
ETCD_3_3_MODULE = "github.com/coreos/etcd"
ETCD_3_6_SERVER_MODULE = "go.etcd.io/etcd/server/v3"
ETCD_3_6_ETCDCTL_MODULE = "go.etcd.io/etcd/etcdctl/v3"
ETCD_3_6_ETCDUTL_MODULE = "go.etcd.io/etcd/etcdutl/v3"

# etcd v3.3.27 predates go.mod: its glide.lock pins each dependency by commit. The module proxy does
# not resolve bare commit hashes, so each is pinned by the pseudo-version of the same commit, or by
# the release tag glide.yaml names for it (the tag glide.lock resolved). Exceptions, each because the
# pinned commit is not on the module proxy under any name found: go.uber.org/atomic v1.3.2 and
# go.uber.org/multierr v1.1.0 (glide.lock: 845920076a29, b587143a48b6; zap v1.10.0's era).
# github.com/cpuguy83/go-md2man (only cobra's man-page generator, never run) is left to go mod tidy.
ETCD_3_3_27_PINS: Mapping[str, str] = {
    "github.com/beorn7/perks": "v1.0.1",  # 37c8de3658fc is tag v1.0.1
    "github.com/bgentry/speakeasy": "v0.1.0",
    "github.com/coreos/bbolt": "v1.3.3",
    "github.com/coreos/go-semver": "v0.2.0",
    "github.com/coreos/go-systemd": "v0.0.0-20190620071333-e64a0ec8b42a",  # glide.yaml: v20 (not semver)
    "github.com/coreos/pkg": "v0.0.0-20180108230652-97fdf19511ea",  # glide.yaml: v4 (not semver)
    "github.com/dgrijalva/jwt-go": "v3.0.0+incompatible",
    "github.com/dustin/go-humanize": "v1.0.0",
    "github.com/ghodss/yaml": "v1.0.0",
    "github.com/gogo/protobuf": "v1.2.1",
    "github.com/golang/groupcache": "v0.0.0-20190702054246-869f871628b6",
    "github.com/golang/protobuf": "v1.3.2",
    "github.com/google/btree": "v0.0.0-20180813153112-4030bb1f1f0c",
    "github.com/google/uuid": "v1.0.0",
    "github.com/gorilla/websocket": "v0.0.0-20170926233335-4201258b820c",
    "github.com/grpc-ecosystem/go-grpc-middleware": "v1.0.0",
    "github.com/grpc-ecosystem/go-grpc-prometheus": "v0.0.0-20170826090648-0dafe0d496ea",
    "github.com/grpc-ecosystem/grpc-gateway": "v1.3.1",
    "github.com/inconshreveable/mousetrap": "v0.0.0-20141017200713-76626ae9c91c",
    "github.com/jonboulle/clockwork": "v0.1.0",
    "github.com/json-iterator/go": "v1.1.7",
    "github.com/kr/pty": "v1.0.0",
    "github.com/mattn/go-runewidth": "v0.0.2",
    "github.com/matttproud/golang_protobuf_extensions": "v1.0.2-0.20181231171920-c182affec369",
    "github.com/modern-go/concurrent": "v0.0.0-20180306012644-bacd9c7ef1dd",
    "github.com/modern-go/reflect2": "v1.0.2",  # glide.lock: v1.0.1, which crashes with Go >= 1.18 (REFLECT2_FIX)
    "github.com/olekukonko/tablewriter": "v0.0.0-20170122224234-a0225b3f23b5",
    "github.com/prometheus/client_golang": "v0.9.0-pre1.0.20171005112915-5cec1d0429b0",
    "github.com/prometheus/client_model": "v0.0.0-20170216185247-6f3806018612",
    "github.com/prometheus/common": "v0.0.0-20171104095907-e3fb1a1acd76",
    "github.com/prometheus/procfs": "v0.0.0-20171017214025-a6e9df898b13",
    "github.com/sirupsen/logrus": "v1.0.3",
    "github.com/soheilhy/cmux": "v0.1.4",
    "github.com/spf13/cobra": "v0.0.0-20151124153217-1c44ec8d3f15",
    "github.com/spf13/pflag": "v1.0.0",
    "github.com/tmc/grpc-websocket-proxy": "v0.0.0-20170815181823-89b8d40f7ca8",
    "github.com/ugorji/go": "v0.0.0-20171019201919-bdcc60b419d1",
    "github.com/urfave/cli": "v1.18.0",
    "github.com/xiang90/probing": "v0.0.0-20160813154853-07dd2e8dfe18",
    "go.uber.org/atomic": "v1.3.2",
    "go.uber.org/multierr": "v1.1.0",
    "go.uber.org/zap": "v1.10.0",
    "golang.org/x/crypto": "v0.0.0-20190308221718-c2843e01d9a2",
    "golang.org/x/net": "v0.0.0-20190813141303-74dc4d7220e7",
    "golang.org/x/sys": "v0.0.0-20190813064441-fde4db37ae7a",
    "golang.org/x/text": "v0.3.2",  # 342b2e1fbaa5 is tag v0.3.2
    "golang.org/x/time": "v0.0.0-20170420181420-c06e80d9300e",
    "google.golang.org/genproto": "v0.0.0-20170731182057-09f6ed296fc6",
    "google.golang.org/grpc": "v1.23.0",
    "gopkg.in/cheggaaa/pb.v1": "v1.0.2",
    "gopkg.in/yaml.v2": "v2.2.2",
    "sigs.k8s.io/yaml": "v1.1.0",
}

# reflect2 v1.0.1 calls reflect.mapiterinit with the signature of Go <= 1.17 (go:linkname); built with
# a later Go, json-iterator crashes on its first map it encodes (seen: the v1.19.16 kube-apiserver
# panicked in reflect2.(*UnsafeMapIterator).HasNext serving a ConfigMap to curl, i.e. pretty-printed).
# v1.0.2 is the release that fixed it for Go 1.18, with the same API; every guide release pins v1.0.1.
REFLECT2_FIX: Mapping[str, str] = {"github.com/modern-go/reflect2": "github.com/modern-go/reflect2@v1.0.2"}

# Fixes a release needs to build from its modules today, per stack: old path -> replacement.
K8S_EXTRA_REPLACES: Mapping[str, Mapping[str, str]] = {
    "guide": {
        # vbom.ml is gone and the module proxy refuses vbom.ml/util; the same commit lives on as
        # github.com/fvbommel/util (k8s.io/kubectl v0.19.16 imports vbom.ml/util/sortorder).
        "vbom.ml/util": "github.com/fvbommel/util@v0.0.0-20160121211510-db5cfe13f5cc",
        **REFLECT2_FIX,
    },
}


@dataclass(frozen=True)
class Artifact:
    """One file of the artifacts layout and how to prove its version."""

    name: str
    version: str
    path: str  # relative to the stack's artifacts directory
    source: str  # module@version, debian:<package>, or lab:<path>
    version_argv: tuple[str, ...] | None  # arguments that print the version
    version_text: str | None  # what that output must contain
    no_version_reason: str | None = None  # why there is no version option, if none


# ----------------------------------------------------------------------------- where


def stack_artifacts_dir(stack: Stack) -> Path:
    return artifacts_dir() if stack.default else artifacts_dir() / "stacks" / stack.name


def stack_build_dir(stack: Stack) -> Path:
    return build_dir() if stack.default else build_dir() / "stacks" / stack.name


def etcd_dir(stack: Stack) -> str:
    return f"etcd-v{stack.etcd}-linux-amd64"


def flannel_dir(stack: Stack) -> str:
    return f"flannel-{stack.flannel}-linux-amd64"


K8S_BIN_DIR = "kubernetes/server/bin"


# ----------------------------------------------------------------------------- what


def _minor(version: str) -> int:
    return int(version.lstrip("v").split(".")[1])


def _k8s_artifact(stack: Stack, command: str) -> Artifact:
    version = stack.kubernetes
    argv: tuple[str, ...]
    if command == "kubectl":
        # kubectl before 1.20 prints a Go struct unless --short (later releases print this by default).
        short = ("--short",) if _minor(version) < 20 else ()
        argv, text = ("version", "--client", *short), f"Client Version: {version}"
    else:
        argv, text = ("--version",), f"Kubernetes {version}"
    return Artifact(command, version, f"{K8S_BIN_DIR}/{command}", f"{K8S_MODULE}@{version}", argv, text)


def _etcd_artifacts(stack: Stack) -> tuple[Artifact, ...]:
    directory = etcd_dir(stack)
    version = stack.etcd
    if stack.etcd_source == "debian":
        return (
            Artifact(
                "etcd", version, f"{directory}/etcd", "debian:etcd-server", ("--version",), f"etcd Version: {version}"
            ),
            Artifact(
                "etcdctl",
                version,
                f"{directory}/etcdctl",
                "debian:etcd-client",
                ("version",),
                f"etcdctl version: {version}",
            ),
        )
    if version.startswith("3.3."):
        source = f"{ETCD_3_3_MODULE}@v{version}+incompatible"
        return (
            Artifact("etcd", version, f"{directory}/etcd", source, ("--version",), f"etcd Version: {version}"),
            # etcdctl 3.3 speaks the v2 API by default: `--version` prints "etcdctl version: 3.3.27"
            # and "API version: 2".
            Artifact("etcdctl", version, f"{directory}/etcdctl", source, ("--version",), f"etcdctl version: {version}"),
        )
    return (
        Artifact(
            "etcd",
            version,
            f"{directory}/etcd",
            f"{ETCD_3_6_SERVER_MODULE}@v{version}",
            ("--version",),
            f"etcd Version: {version}",
        ),
        Artifact(
            "etcdctl",
            version,
            f"{directory}/etcdctl",
            f"{ETCD_3_6_ETCDCTL_MODULE}@v{version}",
            ("version",),
            f"etcdctl version: {version}",
        ),
        Artifact(
            "etcdutl",
            version,
            f"{directory}/etcdutl",
            f"{ETCD_3_6_ETCDUTL_MODULE}@v{version}",
            ("version",),
            f"etcdutl version: {version}",
        ),
    )


def binary_artifacts(stack: Stack) -> tuple[Artifact, ...]:
    flannel_source = f"{stack.flannel_module}@{stack.flannel}"
    items: list[Artifact] = [_k8s_artifact(stack, command) for command in K8S_COMMANDS]
    items += _etcd_artifacts(stack)
    items += [
        Artifact(
            "flanneld",
            stack.flannel,
            f"{flannel_dir(stack)}/flanneld",
            flannel_source,
            ("--version",),
            stack.flannel,
        ),
        Artifact(
            "mk-docker-opts.sh",
            stack.flannel,
            f"{flannel_dir(stack)}/mk-docker-opts.sh",
            flannel_source,
            None,
            None,
            no_version_reason="a shell helper from flannel's dist/ with no version option",
        ),
    ]
    if stack.cri_dockerd is not None:
        items.append(
            Artifact(
                "cri-dockerd",
                stack.cri_dockerd,
                "cri-dockerd/cri-dockerd",
                f"{CRI_DOCKERD_MODULE}@v{stack.cri_dockerd}",
                ("--version",),
                f"cri-dockerd {stack.cri_dockerd}",
            )
        )
    items += [
        Artifact("cfssl", "1.2.0", "cfssl/cfssl", "debian:golang-cfssl", ("version",), "Version: 1.2.0"),
        Artifact(
            "cfssljson",
            "1.2.0",
            "cfssl/cfssljson",
            "debian:golang-cfssl",
            None,
            None,
            no_version_reason="cfssljson 1.2.0 has no version option (its package, golang-cfssl, is pinned)",
        ),
    ]
    return tuple(items)


IMAGE_ARTIFACTS: tuple[Artifact, ...] = (
    Artifact(
        "pause.tar",
        PAUSE_IMAGE.version,
        f"images/{PAUSE_IMAGE.tarball_name}",
        "lab:lab/images/pause",
        None,
        None,
        no_version_reason="an image tarball; its tag kubeproof/pause:3.10 carries the version",
    ),
    Artifact(
        "testbox.tar",
        TEST_IMAGE.version,
        f"images/{TEST_IMAGE.tarball_name}",
        f"debian:{BUSYBOX_PACKAGE}",
        None,
        None,
        no_version_reason="an image tarball; its tag kubeproof/testbox:1 carries the version",
    ),
)


def all_artifacts(stack: Stack) -> tuple[Artifact, ...]:
    return binary_artifacts(stack) + IMAGE_ARTIFACTS


def artifact_named(stack: Stack, name: str) -> Artifact:
    for artifact in all_artifacts(stack):
        if artifact.name == name:
            return artifact
    raise KeyError(name)


def debian_copies(stack: Stack) -> Mapping[str, tuple[str, str]]:
    """Debian binaries copied as they are: artifact name -> (file, package)."""
    copies = {"cfssl": ("/usr/bin/cfssl", "golang-cfssl"), "cfssljson": ("/usr/bin/cfssljson", "golang-cfssl")}
    if stack.etcd_source == "debian":
        copies = {"etcd": ("/usr/bin/etcd", "etcd-server"), "etcdctl": ("/usr/bin/etcdctl", "etcd-client"), **copies}
    return copies


# ----------------------------------------------------------------------------- how: Go wrappers


def k8s_ldflags(stack: Stack) -> str:
    version = stack.kubernetes
    packages = (K8S_COMPONENT_BASE_VERSION,) + ((K8S_CLIENT_GO_VERSION,) if _minor(version) < 20 else ())
    flags = ["-s -w"]
    for package in packages:
        flags += [
            f"-X {package}.gitVersion={version}",
            f"-X {package}.gitMajor=1",
            f"-X {package}.gitMinor={_minor(version)}",
            f"-X {package}.gitTreeState=clean",
            f"-X {package}.buildDate={K8S_BUILD_DATE}",
            f"-X {package}.gitCommit={K8S_GIT_COMMIT}",
        ]
    return " ".join(flags)


def generates_openapi(stack: Stack) -> bool:
    """Whether the release's module lacks pkg/generated/openapi/zz_generated.openapi.go (v1.19)."""
    return _minor(stack.kubernetes) < 20


def k8s_wrapper(stack: Stack) -> GoWrapper:
    version = stack.kubernetes
    staging_version = "v0." + version.lstrip("v").split(".", 1)[1]
    binaries = tuple(GoBinary(command, f"{K8S_MODULE}/cmd/{command}", k8s_ldflags(stack)) for command in K8S_COMMANDS)
    if stack.default:
        return GoWrapper(
            directory="k8s",
            module_path="kubeproof.local/build/kubernetes",
            go_directive="1.24.0",
            requires={K8S_MODULE: version},
            replaces={f"k8s.io/{name}": f"k8s.io/{name}@{staging_version}" for name in K8S_STAGING_MODULES},
            binaries=binaries,
        )
    replaces = dict(K8S_EXTRA_REPLACES.get(stack.name, {}))
    if generates_openapi(stack):
        replaces[K8S_MODULE] = f"./{K8S_SOURCE_DIR}"
    return GoWrapper(
        directory="k8s",
        module_path="kubeproof.local/build/kubernetes",
        # v1.19's own go.mod says go 1.15; the wrapper keeps that language version.
        go_directive="1.15" if _minor(version) < 20 else "1.26.0",
        requires={K8S_MODULE: version},
        replaces=replaces,
        binaries=binaries,
        copy_replaces_from=f"{K8S_MODULE}@{version}",
        staging_version=staging_version,
        toolchain=stack.toolchain("kubernetes"),
        tool_packages=(OPENAPI_GEN_PACKAGE,) if generates_openapi(stack) else (),
        source_copies={K8S_SOURCE_DIR: f"{K8S_MODULE}@{version}"} if generates_openapi(stack) else {},
    )


def etcd_wrapper(stack: Stack) -> GoWrapper | None:
    if stack.etcd_source != "module":
        return None
    version = stack.etcd
    if version.startswith("3.3."):
        return GoWrapper(
            directory="etcd",
            module_path="kubeproof.local/build/etcd",
            go_directive="1.22",
            requires={ETCD_3_3_MODULE: f"v{version}+incompatible"},
            replaces={path: f"{path}@{pinned}" for path, pinned in ETCD_3_3_27_PINS.items()},
            binaries=(
                GoBinary("etcd", ETCD_3_3_MODULE, "-s -w"),
                GoBinary("etcdctl", f"{ETCD_3_3_MODULE}/etcdctl", "-s -w"),
            ),
            toolchain=stack.toolchain("etcd"),
        )
    return GoWrapper(
        directory="etcd",
        module_path="kubeproof.local/build/etcd",
        go_directive="1.26.0",
        requires={
            ETCD_3_6_SERVER_MODULE: f"v{version}",
            ETCD_3_6_ETCDCTL_MODULE: f"v{version}",
            ETCD_3_6_ETCDUTL_MODULE: f"v{version}",
        },
        replaces={},
        binaries=(
            GoBinary("etcd", ETCD_3_6_SERVER_MODULE, "-s -w"),
            GoBinary("etcdctl", ETCD_3_6_ETCDCTL_MODULE, "-s -w"),
            GoBinary("etcdutl", ETCD_3_6_ETCDUTL_MODULE, "-s -w"),
        ),
        toolchain=stack.toolchain("etcd"),
    )


def _flannel_version_package(stack: Stack) -> str:
    # Verified in the module sources: v0.17.0 declares `var Version = "dev"` in version/version.go,
    # later releases in pkg/version/version.go.
    return f"{stack.flannel_module}/version" if _minor(stack.flannel) < 20 else f"{stack.flannel_module}/pkg/version"


def flannel_wrapper(stack: Stack) -> GoWrapper:
    ldflags = f"-s -w -X {_flannel_version_package(stack)}.Version={stack.flannel} -extldflags -static"
    # Upstream builds amd64 flanneld with cgo (its UDP backend is C) linked statically; netgo and
    # osusergo keep the static binary from needing the build host's glibc NSS modules at run time.
    binary = GoBinary("flanneld", stack.flannel_module, ldflags, cgo=True, tags=("netgo", "osusergo"))
    if _minor(stack.flannel) < 20:
        return GoWrapper(
            directory="flannel",
            module_path="kubeproof.local/build/flannel",
            # go 1.17 would make tidy check go 1.16 compatibility, which v0.17.0's graph fails.
            go_directive="1.22",
            requires={stack.flannel_module: stack.flannel},
            replaces=dict(REFLECT2_FIX),  # v0.17.0 requires reflect2 v1.0.1 (through json-iterator)
            binaries=(binary,),
            copy_replaces_from=f"{stack.flannel_module}@{stack.flannel}",
            toolchain=stack.toolchain("flannel"),
        )
    return GoWrapper(
        directory="flannel",
        module_path="kubeproof.local/build/flannel",
        go_directive="1.26.0",
        requires={stack.flannel_module: stack.flannel},
        replaces={TENCENT_VPC_MODULE: "./stubs/tencentcloud-vpc"},
        binaries=(binary,),
        local_replacements={"stubs/tencentcloud-vpc": BUILD_SUPPORT_DIR / "tencentcloud-vpc-stub"},
        toolchain=stack.toolchain("flannel"),
    )


def cri_dockerd_wrapper(stack: Stack) -> GoWrapper | None:
    version = stack.cri_dockerd
    if version is None:
        return None
    # Verified in the module source: cmd/version/version.go declares Version, PreRelease, GitCommit.
    ldflags = (
        f"-s -w -X {CRI_DOCKERD_MODULE}/cmd/version.Version={version}"
        f" -X {CRI_DOCKERD_MODULE}/cmd/version.GitCommit={CRI_DOCKERD_COMMITS[version]}"
    )
    return GoWrapper(
        directory="cri-dockerd",
        module_path="kubeproof.local/build/cri-dockerd",
        go_directive="1.23.7",
        requires={CRI_DOCKERD_MODULE: f"v{version}"},
        replaces={},
        binaries=(GoBinary("cri-dockerd", CRI_DOCKERD_MODULE, ldflags),),
        copy_replaces_from=f"{CRI_DOCKERD_MODULE}@v{version}",
        toolchain=stack.toolchain("cri-dockerd"),
    )


def go_wrappers(stack: Stack) -> tuple[GoWrapper, ...]:
    """In the order they are built (the default stack's order is what it always was)."""
    candidates = (k8s_wrapper(stack), etcd_wrapper(stack), flannel_wrapper(stack), cri_dockerd_wrapper(stack))
    return tuple(wrapper for wrapper in candidates if wrapper is not None)
