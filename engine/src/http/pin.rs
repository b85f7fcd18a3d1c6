//! Host pinning: which origins may receive requests, and how an origin is shown in messages.
//!
//! An origin is compared as `url::Origin` (scheme, host, port with the scheme's default filled in), so
//! `https://api.example.com` and `https://api.example.com:443/v1` are the same origin and
//! `http://api.example.com` is not.

use super::HttpError;
use url::{Host, Origin, Url};

/// The origins a client may send to: the base URL's first, then the allowed hosts.
#[derive(Debug)]
pub(crate) struct Pins {
    origins: Vec<Origin>,
}

impl Pins {
    /// Checks the scheme of every origin, so a client cannot even be built around plain http to the internet.
    pub(crate) fn new(base_url: &Url, allowed: &[Url]) -> Result<Pins, HttpError> {
        let mut origins = Vec::with_capacity(1 + allowed.len());
        for url in std::iter::once(base_url).chain(allowed) {
            check_scheme(url)?;
            let origin = url.origin();
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Ok(Pins { origins })
    }

    pub(crate) fn allows(&self, url: &Url) -> bool {
        check_scheme(url).is_ok() && self.origins.contains(&url.origin())
    }

    /// `Ok` when a request may go to `url`; otherwise the error that says why not, naming only the origin.
    pub(crate) fn check(&self, url: &Url) -> Result<(), HttpError> {
        check_scheme(url)?;
        if self.origins.contains(&url.origin()) { Ok(()) } else { Err(HttpError::OffHost { origin: origin_text(url) }) }
    }
}

/// https anywhere; plain http only where no network sees it (loopback).
pub(crate) fn check_scheme(url: &Url) -> Result<(), HttpError> {
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        _ => Err(HttpError::InsecureScheme { origin: origin_text(url) }),
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `scheme://host[:port]`: what errors show instead of a URL, whose path or query may hold a token.
pub(crate) fn origin_text(url: &Url) -> String {
    let mut text = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        text.push(':');
        text.push_str(&port.to_string());
    }
    text
}
