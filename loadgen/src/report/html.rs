//! report.html: report.md as one page that opens with a double click from
//! a results folder: the markdown converted by pulldown-cmark (so the page
//! and report.md never say different things), every chart the markdown
//! links read from the folder and inlined as an `<svg>` element, a table
//! of contents, and a small inline stylesheet. No script, and nothing the
//! page fetches: an image that is not a chart file beside the report is
//! left as its text, and raw HTML in the markdown (a server's command, say)
//! is shown as text, never taken as markup.

use std::path::{Component, Path};

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd, html};
use pulldown_cmark_escape::escape_html;

const STYLE: &str = "
body { font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1b1b1b;
       max-width: 1280px; margin: 0 auto; padding: 1rem 2rem 4rem; }
h1 { font-size: 1.7rem; margin-bottom: .4rem; }
h2 { font-size: 1.35rem; margin-top: 2.4rem; border-bottom: 1px solid #d8d8d8; padding-bottom: .2rem; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
nav { background: #f6f6f6; border: 1px solid #e2e2e2; border-radius: 4px; padding: .4rem 1rem; font-size: 14px; }
nav ol { margin: .2rem 0; padding-left: 1.4rem; columns: 2; }
table { border-collapse: collapse; margin: .8rem 0; font-size: 13px; display: block; overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #d4d4d4; padding: .25rem .55rem; vertical-align: top; }
th { background: #efefef; text-align: left; }
tbody tr:nth-child(even) td { background: #fafafa; }
td { font-variant-numeric: tabular-nums; }
code { font-size: 12.5px; background: #f2f2f2; padding: 0 .25em; border-radius: 3px; overflow-wrap: anywhere; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 1.2rem 0; border: 1px solid #e6e6e6; }
";

/// Where the table of contents goes until the headings are all known (a
/// comment: nothing the markdown itself can produce, its raw HTML being
/// made text).
const CONTENTS: &str = "<!-- contents -->";

/// The page for `markdown` (report.md), with the charts it links read
/// from `dir` (the report's folder).
pub fn page(markdown: &str, dir: &Path) -> String {
    let mut events: Vec<Event> = Vec::new();
    let mut contents: Vec<(String, String)> = Vec::new();
    let mut title = String::from("c10k-echo report");
    let mut parser = Parser::new_ext(markdown, Options::ENABLE_TABLES);
    while let Some(event) = parser.next() {
        match event {
            Event::Start(Tag::Image { dest_url, .. }) => {
                let alt = text_until(&mut parser, TagEnd::Image).0;
                events.push(Event::InlineHtml(chart(dir, &dest_url, &alt).into()));
            }
            Event::Start(Tag::Heading {
                level,
                classes,
                attrs,
                ..
            }) => {
                let (text, inner) = text_until(&mut parser, TagEnd::Heading(level));
                let id = unique_id(&text, &contents);
                match level {
                    HeadingLevel::H1 => title = text.clone(),
                    HeadingLevel::H2 => contents.push((id.clone(), text.clone())),
                    _ => {}
                }
                events.push(Event::Start(Tag::Heading {
                    level,
                    id: Some(id.into()),
                    classes,
                    attrs,
                }));
                events.extend(inner);
                events.push(Event::End(TagEnd::Heading(level)));
                if level == HeadingLevel::H1 {
                    // The contents go right under the title, filled in below.
                    events.push(Event::InlineHtml(CONTENTS.into()));
                }
            }
            // The report writes no markup of its own: any is text.
            Event::Html(h) | Event::InlineHtml(h) => events.push(Event::Text(h)),
            other => events.push(other),
        }
    }
    let mut body = String::new();
    html::push_html(&mut body, events.into_iter());
    let mut nav = String::from("<nav><strong>Contents</strong><ol>\n");
    for (id, text) in &contents {
        nav.push_str(&format!(
            "<li><a href=\"#{id}\">{}</a></li>\n",
            escape(text)
        ));
    }
    nav.push_str("</ol></nav>\n");
    let body = body.replacen(CONTENTS, &nav, 1);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(&title)
    )
}

/// The plain text up to `end` (a heading's or an image's), and the events
/// in between (which a heading keeps; raw HTML in them made text).
fn text_until<'a>(parser: &mut Parser<'a>, end: TagEnd) -> (String, Vec<Event<'a>>) {
    let mut text = String::new();
    let mut inner = Vec::new();
    for event in parser.by_ref() {
        match event {
            Event::End(e) if e == end => break,
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                text.push_str(&t);
                inner.push(Event::Text(t));
            }
            other => inner.push(other),
        }
    }
    (text, inner)
}

/// An anchor for a heading: its words in lower case joined by '-', with a
/// number added where an earlier heading has the same.
fn unique_id(text: &str, taken: &[(String, String)]) -> String {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let base = if words.is_empty() {
        "section".to_string()
    } else {
        words.join("-")
    };
    let mut id = base.clone();
    let mut n = 1;
    while taken.iter().any(|(t, _)| *t == id) {
        n += 1;
        id = format!("{base}-{n}");
    }
    id
}

/// The chart at `dest` (relative to `dir`) as an inline `<svg>` named by
/// `alt`; a link anywhere else, or a file that cannot be read, gives a line
/// of text instead.
fn chart(dir: &Path, dest: &CowStr, alt: &str) -> String {
    let rel = Path::new(dest.as_ref());
    let local = !dest.contains(':')
        && rel.extension().is_some_and(|e| e == "svg")
        && rel.components().all(|c| matches!(c, Component::Normal(_)));
    let svg = local
        .then(|| std::fs::read_to_string(dir.join(rel)).ok())
        .flatten();
    let Some(svg) = svg else {
        return format!("<em>[chart: {} ({})]</em>", escape(alt), escape(dest));
    };
    // The document is the page now: no XML prolog; the root is labelled.
    let start = svg.find("<svg").unwrap_or(0);
    let svg = svg[start..].trim_end();
    let labelled = format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"{}\"",
        escape(alt)
    );
    svg.replacen("<svg", &labelled, 1)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // Writing into a String cannot fail.
    let _ = escape_html(&mut out, s);
    out
}
