//! The parts of an HTTP task that hold `${...}` placeholders, next to the prepared
//! rest, and their rendering per request.

use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use url::Url;

use super::{PreparedRequest, Target};
use crate::redact::redact_url_credentials;
use crate::scenario::{RenderContext, Template, TemplateValue};

// The prepared request is read on every request: kept inline, one per task.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(super) enum RequestSpec {
    Static(PreparedRequest),
    Dynamic(Box<RequestTemplate>),
}

/// The parts of a request that hold placeholders, next to the prepared rest.
#[derive(Debug, Clone)]
pub(super) struct RequestTemplate {
    /// The request with every static part in place (its target is unused when the
    /// URL is templated).
    pub(super) base: PreparedRequest,
    pub(super) url: Option<UrlTemplate>,
    pub(super) name: Option<Template>,
    pub(super) headers: Vec<(HeaderName, HeaderTemplate)>,
    pub(super) body: Option<BodyTemplate>,
}

#[derive(Debug, Clone)]
pub(super) struct UrlTemplate {
    url: Template,
    params: Vec<(Template, Template)>,
    host: Option<Url>,
    /// When the literal start of the URL fixes the origin: that origin, its text
    /// (empty for a path relative to `host`), and the template of the rest (from the
    /// path on). Only the path is then rendered and checked per request.
    fast: Option<(Target, String, Template)>,
}

impl UrlTemplate {
    pub(super) fn new(
        url: Template,
        params: Vec<(Template, Template)>,
        host: Option<&Url>,
    ) -> Self {
        let prefix = url.literal_prefix();
        let fast = if prefix.starts_with('/') {
            host.and_then(|h| Target::from_url(h).ok())
                .map(|origin| (origin, String::new(), url.clone()))
        } else if let Some(scheme_end) = prefix.find("://") {
            prefix[scheme_end + 3..].find('/').and_then(|slash| {
                let end = scheme_end + 3 + slash;
                let origin = Url::parse(&prefix[..end]).ok()?;
                let origin = Target::from_url(&origin).ok()?;
                Some((origin, prefix[..end].to_string(), url.without_prefix(end)))
            })
        } else {
            None
        };
        Self {
            url,
            params,
            host: host.cloned(),
            fast,
        }
    }

    fn render(&self, ctx: &mut RenderContext<'_>) -> Result<Target, String> {
        let params: Vec<(String, String)> = self
            .params
            .iter()
            .map(|(k, v)| (k.render(ctx), v.render(ctx)))
            .collect();
        let text = match &self.fast {
            Some((origin, origin_text, rest)) => {
                let mut path = rest.render(ctx);
                let plain = path.len();
                if !params.is_empty() {
                    path.push(if path.contains('?') { '&' } else { '?' });
                    let start = path.len();
                    let mut query = form_urlencoded::Serializer::for_suffix(path, start);
                    query.extend_pairs(&params);
                    path = query.finish();
                }
                if let Some(target) = origin.with_path(&path) {
                    return Ok(target);
                }
                // Characters that need escaping: take the general path.
                path.truncate(plain);
                format!("{origin_text}{path}")
            }
            None => self.url.render(ctx),
        };
        let url = build_url(&text, &params, self.host.as_ref())?;
        Target::from_url(&url)
            .map_err(|m| format!("`{}`: {m}", redact_url_credentials(url.as_str())))
    }
}

#[derive(Debug, Clone)]
pub(super) enum HeaderTemplate {
    Text(Template),
    Basic(Template, Template),
}

#[derive(Debug, Clone)]
pub(super) enum BodyTemplate {
    Json(TemplateValue),
    Raw(Template),
    Form(Vec<(Template, Template)>),
}

impl RequestSpec {
    /// The CSV sources this task reads.
    pub(crate) fn csv_sources(&self, into: &mut Vec<usize>) {
        if let RequestSpec::Dynamic(t) = self {
            if let Some(url) = &t.url {
                url.url.csv_sources(into);
                for (k, v) in &url.params {
                    k.csv_sources(into);
                    v.csv_sources(into);
                }
            }
            if let Some(name) = &t.name {
                name.csv_sources(into);
            }
            for (_, header) in &t.headers {
                match header {
                    HeaderTemplate::Text(v) => v.csv_sources(into),
                    HeaderTemplate::Basic(u, p) => {
                        u.csv_sources(into);
                        p.csv_sources(into);
                    }
                }
            }
            match &t.body {
                Some(BodyTemplate::Json(v)) => v.csv_sources(into),
                Some(BodyTemplate::Raw(v)) => v.csv_sources(into),
                Some(BodyTemplate::Form(pairs)) => {
                    for (k, v) in pairs {
                        k.csv_sources(into);
                        v.csv_sources(into);
                    }
                }
                None => {}
            }
        }
    }

    /// The request to send (the prepared one, or the template rendered for this
    /// user) and, for a templated `name`, the name to report it under (else
    /// the task's endpoint).
    pub(crate) fn render(
        &self,
        ctx: &mut RenderContext<'_>,
    ) -> Result<(Rendered<'_>, Option<String>), String> {
        let template = match self {
            RequestSpec::Static(request) => return Ok((Rendered::Prepared(request), None)),
            RequestSpec::Dynamic(template) => template,
        };
        let base = &template.base;
        // Field by field rather than a clone of `base`, whose target a templated URL
        // would replace.
        let target = match &template.url {
            Some(url) => url.render(ctx)?,
            None => base.target.clone(),
        };
        let mut request = Box::new(PreparedRequest {
            method: base.method.clone(),
            target,
            headers: base.headers.clone(),
            body: base.body.clone(),
            timeout: base.timeout,
            allow_redirects: base.allow_redirects,
            verify: base.verify,
            client_cert: base.client_cert.clone(),
            capture: base.capture,
            wire: None,
        });
        for (name, header) in &template.headers {
            let text = match header {
                HeaderTemplate::Text(value) => value.render(ctx),
                HeaderTemplate::Basic(user, password) => {
                    basic_auth(&user.render(ctx), &password.render(ctx))
                }
            };
            request
                .headers
                .insert(name.clone(), header_value(text, name)?);
        }
        match &template.body {
            Some(BodyTemplate::Json(value)) => {
                let bytes = serde_json::to_vec(&value.render(ctx)).map_err(|e| e.to_string())?;
                request.body = Bytes::from(bytes);
            }
            Some(BodyTemplate::Raw(text)) => request.body = Bytes::from(text.render(ctx)),
            Some(BodyTemplate::Form(pairs)) => {
                let encoded = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs.iter().map(|(k, v)| (k.render(ctx), v.render(ctx))))
                    .finish();
                request.body = Bytes::from(encoded);
            }
            None => {}
        }
        let name = template.name.as_ref().map(|name| name.render(ctx));
        Ok((Rendered::Owned(request), name))
    }
}

/// A request to send: a task's prepared one, or one rendered from its templates
/// (boxed, to keep every user's future small).
pub enum Rendered<'t> {
    /// A task's prepared request.
    Prepared(&'t PreparedRequest),
    /// A request rendered for one user.
    Owned(Box<PreparedRequest>),
}

impl std::ops::Deref for Rendered<'_> {
    type Target = PreparedRequest;

    fn deref(&self) -> &PreparedRequest {
        match self {
            Self::Prepared(request) => request,
            Self::Owned(request) => request,
        }
    }
}

/// A rendered header's value, taking the text without copying it.
fn header_value(text: String, name: &HeaderName) -> Result<HeaderValue, String> {
    // The rule `HeaderValue` checks (visible ASCII, obs-text, space and tab), checked
    // first so that the error can quote the text.
    if !text.bytes().all(|b| b == b'\t' || (b >= b' ' && b != 0x7f)) {
        return Err(format!(
            "header `{name}`: `{text}` is not a valid header value"
        ));
    }
    HeaderValue::from_maybe_shared(Bytes::from(text))
        .map_err(|_| format!("header `{name}`: not a valid header value"))
}

pub(super) fn basic_auth(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// An absolute URL from a task's URL text (relative ones joined to `host`) and its
/// query parameters.
pub(super) fn build_url(
    text: &str,
    params: &[(String, String)],
    host: Option<&Url>,
) -> Result<Url, String> {
    let shown = redact_url_credentials(text);
    let mut url = match (Url::parse(text), host) {
        (Ok(url), _) => url,
        (Err(url::ParseError::RelativeUrlWithoutBase), Some(base)) => base
            .join(text)
            .map_err(|e| format!("`{shown}` is not a valid URL: {e}"))?,
        (Err(url::ParseError::RelativeUrlWithoutBase), None) => {
            return Err(format!(
                "`{shown}` is relative; give an absolute URL or the `host` argument"
            ));
        }
        (Err(e), _) => return Err(format!("`{shown}` is not a valid URL: {e}")),
    };
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "scheme `{}` is not supported; use http or https",
            url.scheme()
        ));
    }
    if !params.is_empty() {
        url.query_pairs_mut().extend_pairs(params);
    }
    Ok(url)
}
