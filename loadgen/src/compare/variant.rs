//! Style variants: one style started with extra server flags, named
//! `STYLE:VARIANT` wherever a style name goes (`--styles`, results, reports).
//!
//! | name | server command |
//! |---|---|
//! | `tasks:current_thread` | `servers tasks --workers 0` |
//! | `tasks:multi_thread` | `servers tasks` (the default runtime) |
//! | `polling:sleep<N>` | `servers polling --poll-sleep-us N` |
//! | `STYLE:workers<N>` | `servers STYLE --workers N` |
//! | `STYLE:stack<N>` | `servers STYLE --stack-size N` (bytes) |
//!
//! A plain style name is its own variant with no extra flags. The variant's
//! full name is what results are tagged with, so two variants of one style
//! are two rows of every table; the flags are recorded with the server.

use servers::{Knob, Style};

/// One style and the server flags that make the variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// As given, e.g. `tasks:current_thread`: the name in results.
    pub name: String,
    pub style: Style,
    /// The part after the colon, if any.
    pub variant: Option<String>,
    /// Extra `servers` arguments.
    pub args: Vec<String>,
}

/// The named variants: style, variant, server flags.
const NAMED: &[(Style, &str, &[&str])] = &[
    (Style::Tasks, "current_thread", &["--workers", "0"]),
    (Style::Tasks, "multi_thread", &[]),
];

impl Variant {
    /// Parses `STYLE` or `STYLE:VARIANT`.
    pub fn parse(name: &str) -> Result<Variant, String> {
        let name = name.trim();
        let (style_name, variant) = match name.split_once(':') {
            Some((s, v)) => (s.trim(), Some(v.trim())),
            None => (name, None),
        };
        let style = Style::from_name(style_name).ok_or_else(|| {
            let known: Vec<&str> = Style::ALL.iter().map(|st| st.name()).collect();
            format!(
                "unknown style {style_name:?} (known: all, {})",
                known.join(", ")
            )
        })?;
        let Some(variant) = variant else {
            return Ok(Variant {
                name: style.name().to_string(),
                style,
                variant: None,
                args: Vec::new(),
            });
        };
        let args = variant_args(style, variant).ok_or_else(|| {
            format!(
                "{name:?}: unknown variant {variant:?} of {style_name} (known: {})",
                known_variants(style).join(", ")
            )
        })?;
        Ok(Variant {
            name: format!("{}:{variant}", style.name()),
            style,
            variant: Some(variant.to_string()),
            args,
        })
    }

    /// The server command's arguments after the program name: the style,
    /// then the variant's flags.
    pub fn server_args(&self) -> Vec<String> {
        let mut v = vec![self.style.name().to_string()];
        v.extend(self.args.iter().cloned());
        v
    }
}

fn variant_args(style: Style, variant: &str) -> Option<Vec<String>> {
    if let Some((_, _, args)) = NAMED
        .iter()
        .find(|(s, name, _)| *s == style && *name == variant)
    {
        return Some(args.iter().map(|a| a.to_string()).collect());
    }
    let number = |prefix: &str| -> Option<u64> { variant.strip_prefix(prefix)?.parse().ok() };
    if style == Style::Polling
        && let Some(us) = number("sleep")
    {
        return Some(vec!["--poll-sleep-us".into(), us.to_string()]);
    }
    if let Some(n) = number("workers")
        && style.knobs().contains(&Knob::Workers)
    {
        return Some(vec!["--workers".into(), n.to_string()]);
    }
    if let Some(n) = number("stack")
        && style.knobs().contains(&Knob::StackSize)
    {
        return Some(vec!["--stack-size".into(), n.to_string()]);
    }
    None
}

fn known_variants(style: Style) -> Vec<String> {
    let mut out: Vec<String> = NAMED
        .iter()
        .filter(|(s, _, _)| *s == style)
        .map(|(_, n, _)| n.to_string())
        .collect();
    if style == Style::Polling {
        out.push("sleep<US>".into());
    }
    if style.knobs().contains(&Knob::Workers) {
        out.push("workers<N>".into());
    }
    if style.knobs().contains(&Knob::StackSize) {
        out.push("stack<BYTES>".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_map_to_server_flags() {
        let v = Variant::parse("tasks:current_thread").unwrap();
        assert_eq!(v.style, Style::Tasks);
        assert_eq!(v.server_args(), ["tasks", "--workers", "0"]);
        assert_eq!(v.name, "tasks:current_thread");
        assert_eq!(
            Variant::parse("tasks:multi_thread").unwrap().server_args(),
            ["tasks"]
        );
        assert_eq!(
            Variant::parse("polling:sleep100").unwrap().server_args(),
            ["polling", "--poll-sleep-us", "100"]
        );
        assert_eq!(
            Variant::parse("reactor:workers2").unwrap().server_args(),
            ["reactor", "--workers", "2"]
        );
        let plain = Variant::parse("epoll").unwrap();
        assert_eq!(plain.server_args(), ["epoll"]);
        assert_eq!(plain.variant, None);
        for bad in [
            "fibers",
            "tasks:turbo",
            "reactor:sleep100",
            "polling:sleepy",
            // Flags the style does not read: its server would refuse them.
            "threads:workers4",
            "epoll:stack65536",
            "",
        ] {
            assert!(Variant::parse(bad).is_err(), "{bad}");
        }
    }
}
