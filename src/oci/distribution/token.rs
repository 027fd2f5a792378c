//! The authentication handshake: the `Authorization` a request carries,
//! and answering a `WWW-Authenticate` challenge (Basic credentials, or a
//! Bearer token from the challenge's realm, kept by scope).

use reqwest::header;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use super::auth::Auth;
use super::challenge::Challenge;
use super::client::{Distribution, error_detail, json};
use super::error::{Error, Result, http_error};
use super::hosts::{authority, may_carry_credentials, origin};
use super::redact::redact;

impl Distribution {
    pub(super) fn authorization(&self, scope: &str) -> Option<String> {
        if let Auth::Header(h) = &self.auth {
            return Some(h.clone());
        }
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.get(scope).cloned()
    }

    /// Gets what a `WWW-Authenticate` challenge asks for and keeps it for
    /// the scope.
    pub(super) async fn answer(&self, challenge: &str, scope: &str) -> Result<()> {
        let refused = |message: String| Error::Unauthorized {
            url: self.endpoint().to_string(),
            status: StatusCode::UNAUTHORIZED,
            detail: format!(": {message}"),
        };
        let parsed = Challenge::parse(challenge)
            .ok_or_else(|| refused(format!("unreadable challenge {challenge:?}")))?;
        let basic = match &self.auth {
            Auth::Basic(b) => Some(b.clone()),
            _ => None,
        };
        let authorization = match parsed.scheme.as_str() {
            "basic" => match basic {
                Some(_) if !may_carry_credentials(&self.base) => {
                    return Err(Error::OffHost {
                        url: self.endpoint().to_string(),
                        message: "Basic credentials are never sent over plain HTTP".into(),
                    });
                }
                Some(b) => format!("Basic {b}"),
                None => {
                    return Err(refused(
                        "Basic credentials required; none in the Docker config".into(),
                    ));
                }
            },
            "bearer" => {
                let realm = parsed
                    .param("realm")
                    .ok_or_else(|| refused("Bearer challenge without a realm".into()))?;
                let mut url = Url::parse(realm)
                    .map_err(|e| refused(format!("token realm {realm:?}: {e}")))?;
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = parsed.param("service") {
                        query.append_pair("service", service);
                    }
                    query.append_pair("scope", scope);
                }
                let mut request = self.http.get(url.clone());
                // The Basic credentials go to a realm on this registry's
                // own host, over HTTPS (or loopback), and nowhere else.
                let same_host = url.host_str() == self.base.host_str()
                    && url.port_or_known_default() == self.base.port_or_known_default();
                let named = self.realm_hosts.iter().any(|h| *h == authority(&url));
                if basic.is_some() && (!(same_host || named) || !may_carry_credentials(&url)) {
                    return Err(Error::OffHost {
                        url: redact(&url),
                        message: format!(
                            "the token realm is not on {} over HTTPS; the credentials for it are not sent",
                            origin(&self.base)
                        ),
                    });
                }
                if let Some(b) = basic {
                    request = request.header(header::AUTHORIZATION, format!("Basic {b}"));
                }
                let response = request
                    .send()
                    .await
                    .map_err(|source| http_error(Method::GET, redact(&url), source))?;
                if !response.status().is_success() {
                    let status = response.status();
                    return Err(Error::Unauthorized {
                        url: redact(&url),
                        status,
                        detail: error_detail(response).await,
                    });
                }
                #[derive(Deserialize)]
                struct Token {
                    #[serde(default)]
                    token: Option<String>,
                    #[serde(default)]
                    access_token: Option<String>,
                }
                let token: Token = json(response, &url).await?;
                let token = token
                    .token
                    .or(token.access_token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| refused(format!("{} gave no token", redact(&url))))?;
                format!("Bearer {token}")
            }
            other => return Err(refused(format!("unsupported scheme {other:?}"))),
        };
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(scope.to_string(), authorization);
        Ok(())
    }
}
