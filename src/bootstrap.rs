//! `bootstrap`: the same engine as the function, run once from the command
//! line against a fresh cluster's future registry. It resolves the XR,
//! composes everything, and writes what `kubectl apply` and `helm install`
//! need, in wave order, so a cluster with no Crossplane yet can be brought up
//! from ECR alone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Map, Value as Json, json};

use crate::compose::{self, Planned};
use crate::error::{Error, Result};
use crate::registry::connector::EcrConnector;
use crate::registry::credentials::AwsCredentials;
use crate::resolve::graph::Graph;
use crate::resolve::{Hints, resolve_within};
use crate::spec::load;
use crate::spec::policy::Origin;
use crate::spec::settings::Trust;
use crate::spec::xr::XrRef;
use crate::spec::{Input, Settings, XrSpec};

/// A bootstrap resolves once, with nobody waiting on a reconcile: it may
/// take longer than a RunFunction call.
const DEADLINE: Duration = Duration::from_secs(300);

/// Where Crossplane's own image lives upstream; mapped through the mirrors.
const CROSSPLANE_IMAGE: &str = "xpkg.crossplane.io/crossplane/crossplane";

#[derive(Debug, Clone, Args)]
pub struct BootstrapArgs {
    /// The XR (or claim) to install, as YAML.
    #[arg(long)]
    pub xr: PathBuf,

    /// The function input as YAML: an `Input` document, or a Composition
    /// whose pipeline step calls function-ecr-packages.
    #[arg(long)]
    pub input: Option<PathBuf>,

    /// AWS shared-credentials file to read the `[default]` profile from;
    /// without it the default AWS credential chain is used.
    #[arg(long)]
    pub credentials_file: Option<PathBuf>,

    /// Folder to write `manifests.yaml` and `crossplane-values.yaml` into.
    #[arg(long, default_value = "bootstrap")]
    pub out: PathBuf,
}

pub async fn run(args: &BootstrapArgs) -> Result<()> {
    let composite = load::yaml(&args.xr)?;
    let input = match &args.input {
        Some(path) => load::input_file(path)?,
        None => Input::default(),
    };
    let spec = XrSpec::from_composite(&composite)?;
    let name = composite
        .pointer("/metadata/name")
        .and_then(Json::as_str)
        .unwrap_or("bootstrap");
    // The platform team runs bootstrap on its own XR: the input's
    // allowlists bound app teams' requests, not this.
    let settings = Settings::with_origin(XrRef::named(name), &spec, &input, Origin::Platform)?;
    let credentials = match &args.credentials_file {
        Some(path) => Some(AwsCredentials::from_ini(&load::text(path)?)?),
        None => None,
    };

    let graph = resolve_with_progress(&settings, &spec, credentials.as_ref()).await?;
    let plan = compose::plan(&settings, &graph)?;

    std::fs::create_dir_all(&args.out).map_err(|e| io_error(&args.out, e))?;
    let manifests = args.out.join("manifests.yaml");
    let values = args.out.join("crossplane-values.yaml");
    write(&manifests, &render_waves(&plan, &manifests)?)?;
    write(&values, &render_values(&settings, &values)?)?;
    eprintln!("wrote {} and {}", manifests.display(), values.display());
    Ok(())
}

async fn resolve_with_progress(
    settings: &Settings,
    spec: &XrSpec,
    credentials: Option<&AwsCredentials>,
) -> Result<Graph> {
    eprintln!(
        "resolving {} packages and their dependencies from {}",
        spec.packages.len(),
        settings.registry
    );
    let started = Instant::now();
    let connector = EcrConnector::new();
    let resolution = resolve_within(
        &connector,
        settings,
        spec,
        // Nothing is installed yet: no remembered packages to keep, and
        // nothing rolled back.
        Hints::default(),
        credentials,
        DEADLINE,
    );
    tokio::pin!(resolution);
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    ticker.tick().await;
    let graph = loop {
        tokio::select! {
            result = &mut resolution => break result?.graph,
            _ = ticker.tick() => eprintln!("still resolving after {}s", started.elapsed().as_secs()),
        }
    };
    for node in graph.install_order() {
        eprintln!(
            "resolved {} {} ({})",
            node.repository, node.version, node.digest
        );
    }
    Ok(graph)
}

/// Groups the plan into waves: a resource's wave is one past the latest
/// wave of what it needs, so applying wave by wave (and waiting for each to
/// be ready) reproduces the function's gating.
pub fn waves(plan: &[Planned]) -> Vec<Vec<&Planned>> {
    let mut wave_of: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut waves: Vec<Vec<&Planned>> = Vec::new();
    for planned in plan {
        let wave = planned
            .needs
            .iter()
            .filter_map(|n| wave_of.get(n.as_str()))
            .map(|w| w + 1)
            .max()
            .unwrap_or(0);
        wave_of.insert(&planned.name, wave);
        if waves.len() <= wave {
            waves.resize_with(wave + 1, Vec::new);
        }
        waves[wave].push(planned);
    }
    waves
}

fn render_waves(plan: &[Planned], path: &Path) -> Result<String> {
    let mut out = String::from(
        "# Generated by `function-ecr-packages bootstrap`. Apply one wave at a time and wait\n\
         # for it to be ready (managed resources Ready, packages Installed and Healthy).\n",
    );
    for (i, wave) in waves(plan).iter().enumerate() {
        let names: Vec<&str> = wave.iter().map(|p| p.name.as_str()).collect();
        out.push_str(&format!("\n# wave {}: {}\n", i + 1, names.join(", ")));
        for planned in wave {
            out.push_str("---\n");
            out.push_str(&to_yaml(&Json::Object(planned.object.clone()), path)?);
        }
    }
    Ok(out)
}

/// Helm values for installing Crossplane itself from the mirror, with the
/// pull role on its service account when the identity is IRSA.
fn render_values(settings: &Settings, path: &Path) -> Result<String> {
    let repository = settings
        .repository_for(CROSSPLANE_IMAGE)
        .map(|(repository, _)| format!("{}/{repository}", settings.registry_host))
        .ok_or_else(|| Error::InvalidInput {
            field: "mirrors".to_string(),
            message: format!("no mirror covers {CROSSPLANE_IMAGE}, so Crossplane itself cannot be pulled from ECR"),
        })?;
    let mut values = Map::new();
    values.insert("image".to_string(), json!({"repository": repository}));
    if let Some(iam) = &settings.iam
        && let Trust::Irsa { .. } = iam.trust
    {
        let arn = format!(
            "arn:{}:iam::{}:role/{}",
            settings.registry.partition(),
            settings.registry.account_id,
            iam.role_name
        );
        values.insert(
            "serviceAccount".to_string(),
            json!({"customAnnotations": {"eks.amazonaws.com/role-arn": arn}}),
        );
    }
    Ok(format!(
        "# Generated by `function-ecr-packages bootstrap`: helm install crossplane ... -f this-file\n{}",
        to_yaml(&Json::Object(values), path)?
    ))
}

/// `value` as YAML for the file at `path`.
fn to_yaml(value: &Json, path: &Path) -> Result<String> {
    serde_norway::to_string(value).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: format!("encoding YAML: {e}"),
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, error: std::io::Error) -> Error {
    Error::File {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(name: &str, needs: &[&str]) -> Planned {
        Planned {
            name: name.to_string(),
            object: Map::new(),
            needs: needs.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn waves_follow_needs() {
        let plan = [
            planned("iam-attachment", &[]),
            planned("image-config-x", &[]),
            planned("package-family", &["iam-attachment", "image-config-x"]),
            planned("package-fn", &["iam-attachment", "image-config-x"]),
            planned("package-s3", &["iam-attachment", "package-family"]),
        ];
        let names: Vec<Vec<&str>> = waves(&plan)
            .iter()
            .map(|w| w.iter().map(|p| p.name.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            vec![
                vec!["iam-attachment", "image-config-x"],
                vec!["package-family", "package-fn"],
                vec!["package-s3"]
            ]
        );
    }
}
