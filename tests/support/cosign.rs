//! The real cosign CLI, for the signature tests: `scripts/setup` builds
//! it (v3.0.6, from the Go module proxy) into
//! `~/.cache/function-ecr-packages/cosign-v3.0.6/cosign` and `scripts/test`
//! exports `COSIGN` and `COSIGN_REQUIRED`. Run offline: no transparency
//! log, no signing config, plain-HTTP loopback registries.

/// The cosign scripts/setup builds (`COSIGN`, or its cache), or `None`
/// (the test says so and passes) unless `COSIGN_REQUIRED` is set.
fn bin() -> Option<std::path::PathBuf> {
    let cached = std::env::var_os("HOME").map(|h| {
        std::path::PathBuf::from(h).join(".cache/function-ecr-packages/cosign-v3.0.6/cosign")
    });
    let found = std::env::var_os("COSIGN")
        .map(std::path::PathBuf::from)
        .or(cached)
        .filter(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("COSIGN_REQUIRED").is_none(),
            "cosign is not built: run scripts/setup (it builds cosign v3.0.6 from the Go module proxy)"
        );
        eprintln!("skipping: no cosign (scripts/setup builds it)");
    }
    found
}

/// cosign, run in `dir` (where its key pairs are) with the key password
/// set, offline: no transparency log, no signing config, the local ECR's
/// plain-HTTP registry.
pub struct Cosign {
    bin: std::path::PathBuf,
    dir: super::localecr::Scratch,
}

impl Cosign {
    /// cosign in a scratch directory of its own; `None` without cosign
    /// (see [`bin`]).
    pub fn new() -> Option<Cosign> {
        Some(Cosign {
            bin: bin()?,
            dir: super::localecr::Scratch::new("cosign"),
        })
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(&self.bin)
            .args(args)
            .current_dir(&*self.dir)
            .env("COSIGN_PASSWORD", "test")
            .env("COSIGN_YES", "true")
            .output()
            .expect("run cosign");
        assert!(
            out.status.success(),
            "cosign {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A key pair `<name>.key`, `<name>.pub`; the public key's PEM.
    pub fn key_pair(&self, name: &str) -> String {
        self.run(&["generate-key-pair", "--output-key-prefix", name]);
        std::fs::read_to_string(self.dir.join(format!("{name}.pub"))).expect("public key")
    }

    /// Signs `image` with the key `key`, as a bundle referrer or the
    /// legacy `.sig` tag.
    pub fn sign(&self, key: &str, image: &str, bundle: bool) {
        let key = format!("{key}.key");
        let format = format!("--new-bundle-format={bundle}");
        self.run(&[
            "sign",
            "--key",
            &key,
            "--tlog-upload=false",
            "--use-signing-config=false",
            &format,
            "--allow-insecure-registry",
            "--allow-http-registry",
            image,
        ]);
    }

    /// Attaches to `image` a legacy signature whose payload names `named`,
    /// signed with `key`; `tamper` edits the payload after signing.
    pub fn attach(&self, key: &str, image: &str, named: &str, tamper: bool) {
        let insecure = ["--allow-insecure-registry", "--allow-http-registry"];
        let payload = self.run(&[&["generate"], &insecure[..], &[named]].concat());
        let path = self.dir.join("payload.json");
        std::fs::write(&path, payload.trim()).expect("payload");
        let key = format!("{key}.key");
        self.run(&[
            "sign-blob",
            "--key",
            &key,
            "--tlog-upload=false",
            "--use-signing-config=false",
            "--new-bundle-format=false",
            "--output-signature",
            "payload.sig",
            "payload.json",
        ]);
        if tamper {
            let edited = payload
                .trim()
                .replace("\"optional\":null", "\"optional\":{\"x\":\"y\"}");
            assert_ne!(
                edited,
                payload.trim(),
                "the payload has no optional field to edit"
            );
            std::fs::write(&path, edited).expect("payload");
        }
        self.run(
            &[
                &[
                    "attach",
                    "signature",
                    "--payload",
                    "payload.json",
                    "--signature",
                    "payload.sig",
                ],
                &insecure[..],
                &[image],
            ]
            .concat(),
        );
    }
}

/// `repository@digest` on the registry at `endpoint` (`http://host:port`
/// or `host:port`), as cosign names an image.
pub fn image(endpoint: &str, repository: &str, digest: &str) -> String {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    format!("{host}/{repository}@{digest}")
}
