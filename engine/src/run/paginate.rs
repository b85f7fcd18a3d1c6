//! Decides the next page of a resource from the current response, for every pagination kind a spec can
//! name. Pure logic: no I/O, no store; the runner sends the URLs this returns.
//!
//! Guards live here too: a next link that repeats an earlier one and the `max_pages` limit both end the
//! paging with an error rather than looping forever.

use crate::jsonpath::{Doc, JsonPath};
use crate::model::Paginate;
use std::collections::HashSet;
use url::Url;

/// What to request after the current page.
#[derive(Debug, PartialEq)]
pub enum Next {
    Page(Url),
    Done,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PagingError {
    #[error("the next page link repeats an earlier one, so paging would never end")]
    Repeats,
    #[error("stopped after {0} pages, the spec's max_pages; raise it if the collection really is that large")]
    MaxPages(u32),
    #[error("the next page link `{0}` is not a URL")]
    BadLink(String),
}

/// Paging state of one request chain.
pub struct Pager<'a> {
    kind: &'a Paginate,
    first: Url,
    pages: u32,
    seen: HashSet<String>,
    offset: u64,
    page_number: u64,
}

impl<'a> Pager<'a> {
    /// `first` is the first page's URL without paging parameters; [`Pager::first_url`] adds them.
    pub fn new(kind: &'a Paginate, first: Url) -> Self {
        let (offset, page_number) = match kind {
            Paginate::Offset { start, .. } => (*start, 0),
            Paginate::PageNumber { start, .. } => (0, *start),
            _ => (0, 0),
        };
        Pager { kind, first, pages: 0, seen: HashSet::new(), offset, page_number }
    }

    /// The URL of the first page, with the paginator's own parameters.
    pub fn first_url(&self) -> Url {
        match self.kind {
            Paginate::Offset { .. } | Paginate::PageNumber { .. } => self.numbered_url(),
            _ => self.first.clone(),
        }
    }

    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Given the page just read (its URL, parsed body, `Link` headers and number of records), the next
    /// page to request.
    pub fn next(
        &mut self,
        current: &Url,
        body: &Doc,
        link_headers: &[String],
        records: usize,
    ) -> Result<Next, PagingError> {
        self.pages += 1;
        self.seen.insert(current.as_str().to_string());
        let (stop_on_empty, max_pages) = match self.kind {
            Paginate::None => return Ok(Next::Done),
            Paginate::NextUrl { stop_on_empty_page, max_pages, .. }
            | Paginate::LinkHeader { stop_on_empty_page, max_pages, .. }
            | Paginate::Cursor { stop_on_empty_page, max_pages, .. } => (*stop_on_empty_page, *max_pages),
            Paginate::Offset { max_pages, .. } | Paginate::PageNumber { max_pages, .. } => (records == 0, *max_pages),
        };
        if stop_on_empty && records == 0 {
            return Ok(Next::Done);
        }
        let next = match self.kind {
            Paginate::None => None,
            Paginate::NextUrl { path, .. } => match path.first_doc(body).as_deref() {
                Some(Doc::String(link)) if !link.is_empty() => Some(join(current, link)?),
                _ => None,
            },
            Paginate::LinkHeader { rel, .. } => match link_headers.iter().find_map(|h| link_with_rel(h, rel)) {
                Some(link) => Some(join(current, &link)?),
                None => None,
            },
            Paginate::Cursor { token_path, param, has_more_path, .. } => {
                let more = has_more_path
                    .as_ref()
                    .is_none_or(|p| matches!(p.first_doc(body).as_deref(), Some(Doc::Bool(true))));
                let token = match token_path.first_doc(body).as_deref() {
                    Some(Doc::String(t)) if !t.is_empty() => Some(t.to_string()),
                    Some(Doc::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                match token.filter(|_| more) {
                    Some(token) => {
                        let mut url = self.first.clone();
                        set_param(&mut url, param, &token);
                        Some(url)
                    }
                    None => None,
                }
            }
            Paginate::Offset { limit, total_path, .. } => {
                let total = total_path.as_ref().and_then(|p| count(p, body));
                self.offset += u64::from(*limit);
                let short = records < *limit as usize;
                let past_total = total.is_some_and(|t| self.offset >= t);
                (!short && !past_total).then(|| self.numbered_url())
            }
            Paginate::PageNumber { size, total_pages_path, start, .. } => {
                let total = total_pages_path.as_ref().and_then(|p| count(p, body));
                let short = size.is_some_and(|s| records < s as usize);
                self.page_number += 1;
                // Page numbers start at `start`, so the count of pages read so far is `page_number - start`.
                let past_total = total.is_some_and(|t| self.page_number - start >= t);
                (!short && !past_total).then(|| self.numbered_url())
            }
        };
        match next {
            None => Ok(Next::Done),
            Some(_) if self.pages >= max_pages => Err(PagingError::MaxPages(max_pages)),
            Some(url) if self.seen.contains(url.as_str()) => Err(PagingError::Repeats),
            Some(url) => Ok(Next::Page(url)),
        }
    }

    fn numbered_url(&self) -> Url {
        let mut url = self.first.clone();
        match self.kind {
            Paginate::Offset { param, limit_param, limit, .. } => {
                set_param(&mut url, param, &self.offset.to_string());
                set_param(&mut url, limit_param, &limit.to_string());
            }
            Paginate::PageNumber { param, size_param, size, .. } => {
                set_param(&mut url, param, &self.page_number.to_string());
                if let (Some(size_param), Some(size)) = (size_param, size) {
                    set_param(&mut url, size_param, &size.to_string());
                }
            }
            _ => {}
        }
        url
    }
}

/// A count the body gives at `path` (a total of records or pages), when it is a non-negative integer.
fn count(path: &JsonPath, body: &Doc) -> Option<u64> {
    match path.first_doc(body).as_deref() {
        Some(Doc::Number(n)) => n.as_u64(),
        _ => None,
    }
}

/// Resolves a possibly relative link against the page it came from. Absolute links are kept byte for byte.
fn join(current: &Url, link: &str) -> Result<Url, PagingError> {
    current.join(link).map_err(|_| PagingError::BadLink(shorten(link)))
}

fn shorten(text: &str) -> String {
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text.to_string()
    }
}

/// Replaces (or adds) one query parameter, keeping the others in order.
pub fn set_param(url: &mut Url, name: &str, value: &str) {
    let kept: Vec<(String, String)> =
        url.query_pairs().filter(|(k, _)| k != name).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let mut pairs = url.query_pairs_mut();
    pairs.clear();
    for (k, v) in &kept {
        pairs.append_pair(k, v);
    }
    pairs.append_pair(name, value);
}

/// Finds the target of `rel` in one RFC 8288 `Link` header value (`<url>; rel="next", <url2>; rel="prev"`).
pub fn link_with_rel(header: &str, rel: &str) -> Option<String> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        let after = &rest[close + 1..];
        // A link's parameters run until the next link, which starts with `<` (never part of a URL).
        let end = after.find('<').unwrap_or(after.len());
        let matches = after[..end].split([';', ',']).any(|param| {
            let param = param.trim();
            param
                .strip_prefix("rel=")
                .is_some_and(|v| v.trim_matches('"').split_whitespace().any(|r| r.eq_ignore_ascii_case(rel)))
        });
        if matches {
            return Some(target.to_string());
        }
        rest = &after[end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonpath::JsonPath;
    use serde_json::json;

    /// A response body, as the pager reads it.
    macro_rules! body {
        ($($json:tt)+) => {
            Doc::from_value(&json!($($json)+))
        };
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn next_url_is_followed_verbatim_and_ends_without_a_link() {
        let kind = Paginate::NextUrl {
            path: JsonPath::compile("$['@next']").unwrap(),
            max_pages: 100,
            stop_on_empty_page: false,
        };
        let first = url("https://api.example.com/v1/users?$top=2");
        let mut pager = Pager::new(&kind, first.clone());
        let link = "https://api.example.com/v1/users?$top=2&$skiptoken=X%27ab%27";
        let next = pager.next(&first, &body!({"@next": link, "value": [1, 2]}), &[], 2).unwrap();
        assert_eq!(next, Next::Page(url(link)));
        assert_eq!(pager.next(&url(link), &body!({"value": [3]}), &[], 1).unwrap(), Next::Done);
    }

    #[test]
    fn an_empty_page_with_a_next_link_goes_on_unless_told_to_stop() {
        let path = JsonPath::compile("$.next").unwrap();
        let kind = Paginate::NextUrl { path: path.clone(), max_pages: 100, stop_on_empty_page: false };
        let first = url("https://a.example/x");
        let value = json!({"next": "https://a.example/x?p=2", "items": []});
        let body = Doc::from_value(&value);
        assert!(matches!(Pager::new(&kind, first.clone()).next(&first, &body, &[], 0).unwrap(), Next::Page(_)));
        let kind = Paginate::NextUrl { path, max_pages: 100, stop_on_empty_page: true };
        assert_eq!(Pager::new(&kind, first.clone()).next(&first, &body, &[], 0).unwrap(), Next::Done);
    }

    #[test]
    fn repeating_links_and_max_pages_end_with_errors() {
        let kind =
            Paginate::NextUrl { path: JsonPath::compile("$.next").unwrap(), max_pages: 3, stop_on_empty_page: false };
        let first = url("https://a.example/x");
        let mut pager = Pager::new(&kind, first.clone());
        assert_eq!(pager.next(&first, &body!({"next": "https://a.example/x"}), &[], 1), Err(PagingError::Repeats));
        let mut pager = Pager::new(&kind, first.clone());
        let mut current = first;
        let mut result = Ok(Next::Done);
        for i in 0..3 {
            result = pager.next(&current, &body!({"next": format!("https://a.example/x?p={i}")}), &[], 1);
            if let Ok(Next::Page(u)) = &result {
                current = u.clone();
            }
        }
        assert_eq!(result, Err(PagingError::MaxPages(3)));
    }

    #[test]
    fn link_headers_are_parsed() {
        let header =
            r#"<https://a.example/users?after=abc&limit=2>; rel="next", <https://a.example/users?limit=2>; rel="self""#;
        assert_eq!(link_with_rel(header, "next").as_deref(), Some("https://a.example/users?after=abc&limit=2"));
        assert_eq!(link_with_rel(header, "self").as_deref(), Some("https://a.example/users?limit=2"));
        assert_eq!(link_with_rel(header, "prev"), None);
        let kind = Paginate::LinkHeader { rel: "next".into(), max_pages: 10, stop_on_empty_page: false };
        let first = url("https://a.example/users?limit=2");
        let next = Pager::new(&kind, first.clone()).next(&first, &body!([1, 2]), &[header.to_string()], 2).unwrap();
        assert_eq!(next, Next::Page(url("https://a.example/users?after=abc&limit=2")));
    }

    #[test]
    fn cursor_tokens_go_into_the_first_url() {
        let kind = Paginate::Cursor {
            token_path: JsonPath::compile("$.meta.next").unwrap(),
            param: "cursor".into(),
            has_more_path: None,
            max_pages: 10,
            stop_on_empty_page: false,
        };
        let first = url("https://a.example/items?limit=5");
        let mut pager = Pager::new(&kind, first.clone());
        let next = pager.next(&first, &body!({"meta": {"next": "t1"}}), &[], 5).unwrap();
        assert_eq!(next, Next::Page(url("https://a.example/items?limit=5&cursor=t1")));
        assert_eq!(
            pager
                .next(&url("https://a.example/items?limit=5&cursor=t1"), &body!({"meta": {"next": ""}}), &[], 5)
                .unwrap(),
            Next::Done
        );
    }

    #[test]
    fn offsets_and_page_numbers_stop_on_short_pages_and_totals() {
        let kind = Paginate::Offset {
            param: "offset".into(),
            limit_param: "limit".into(),
            limit: 2,
            start: 0,
            total_path: None,
            max_pages: 10,
        };
        let mut pager = Pager::new(&kind, url("https://a.example/x"));
        let first = pager.first_url();
        assert_eq!(first.as_str(), "https://a.example/x?offset=0&limit=2");
        assert_eq!(
            pager.next(&first, &body!([1, 2]), &[], 2).unwrap(),
            Next::Page(url("https://a.example/x?offset=2&limit=2"))
        );
        assert_eq!(pager.next(&url("https://a.example/x?offset=2&limit=2"), &body!([3]), &[], 1).unwrap(), Next::Done);

        let kind = Paginate::PageNumber {
            param: "page".into(),
            start: 1,
            size_param: Some("per_page".into()),
            size: Some(2),
            total_pages_path: Some(JsonPath::compile("$.pages").unwrap()),
            max_pages: 10,
        };
        let mut pager = Pager::new(&kind, url("https://a.example/x"));
        let first = pager.first_url();
        assert_eq!(first.as_str(), "https://a.example/x?page=1&per_page=2");
        let second = pager.next(&first, &body!({"pages": 2}), &[], 2).unwrap();
        assert_eq!(second, Next::Page(url("https://a.example/x?page=2&per_page=2")));
        assert_eq!(
            pager.next(&url("https://a.example/x?page=2&per_page=2"), &body!({"pages": 2}), &[], 2).unwrap(),
            Next::Done
        );
    }
}
