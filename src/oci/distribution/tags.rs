//! A repository's tag list, page by page, following only `Link` pages
//! on the same registry and repository.

use reqwest::header::{self, HeaderMap};
use reqwest::{Method, Url};
use serde::Deserialize;

use super::client::{Distribution, json, repository_arg};
use super::error::{Error, Result};
use super::hosts::origin;
use super::redact::redact;
use crate::reference::{self, Repository};

/// Most pages of `/tags/list` read for one repository.
const MAX_TAG_PAGES: usize = 100;

impl Distribution {
    /// Every tag of `repository`, following `Link` pages.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let repository = &repository_arg(repository)?;
        let mut tags = Vec::new();
        let mut url = self.url(&reference::tags_path(repository));
        url.set_query(Some("n=1000"));
        for _ in 0..MAX_TAG_PAGES {
            let response = self
                .send(
                    Method::GET,
                    url.clone(),
                    repository,
                    false,
                    HeaderMap::new(),
                    None,
                )
                .await?;
            let next = match next_page(response.headers()) {
                Some(link) => Some(self.next_page_url(&url, &link, repository)?),
                None => None,
            };
            let page: Page = json(response, &url).await?;
            for tag in page.tags.unwrap_or_default() {
                // A tag becomes a request path later: checked where it
                // comes in, named by where.
                reference::Tag::parse(
                    &tag,
                    format!("tag {} of the tag list of {}", tags.len(), redact(&url)),
                )?;
                tags.push(tag);
            }
            match next {
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
        Err(Error::Invalid {
            url: url.to_string(),
            message: format!("more than {MAX_TAG_PAGES} pages of tags"),
        })
    }

    /// A `Link: rel="next"` target: only the same registry's tag list of
    /// the same repository, with its query; anything else is refused.
    fn next_page_url(&self, url: &Url, link: &str, repository: &Repository) -> Result<Url> {
        let refused = |message: String| Error::OffHost {
            url: redact(url),
            message,
        };
        let next = url
            .join(link)
            .map_err(|e| refused(format!("the Link header is not a URL: {e}")))?;
        if !self.same_origin(&next) {
            return Err(refused(format!(
                "the Link header names another host ({}); its next page is not followed",
                origin(&next)
            )));
        }
        if next.path() != reference::tags_path(repository) {
            return Err(Error::Reference(reference::Error::Repository {
                origin: format!("the Link header of {}", redact(url)),
                value: reference::Error::quoted(next.path()),
            }));
        }
        let mut checked = self.url(&reference::tags_path(repository));
        checked.set_query(next.query());
        Ok(checked)
    }
}

/// The target of a `Link: <...>; rel="next"` header.
fn next_page(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn next_page_links() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LINK,
            HeaderValue::from_static(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#),
        );
        assert_eq!(
            next_page(&headers).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(next_page(&HeaderMap::new()), None);
    }

    proptest! {
        #[test]
        fn link_headers_never_panic(link in "[ -~]{0,200}") {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&link) {
                headers.insert(header::LINK, value);
            }
            let _ = next_page(&headers);
        }
    }
}
