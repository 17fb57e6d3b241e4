//! The parsers of `loadgen`'s flag values (percentages, quotas, style and
//! CPU lists, addresses, durations, rates, source addresses), for the clap
//! definitions in [`crate::cli::args`].

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// A percentage: `10` or `10%`.
pub(crate) fn parse_pct(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        _ => Err(format!("{s:?} is not a percentage (want e.g. 10 or 10%)")),
    }
}

/// `--server-cpu-quota`: CPUs, or none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota(pub Option<f64>);

pub(crate) fn parse_quota(s: &str) -> Result<Quota, String> {
    if s == "none" {
        return Ok(Quota(None));
    }
    match s.parse::<f64>() {
        // The kernel's floor is 1 ms per 10 ms period.
        Ok(q) if q.is_finite() && (0.1..=1024.0).contains(&q) => Ok(Quota(Some(q))),
        _ => Err(format!(
            "{s:?} is not a CPU quota: want a number of CPUs from 0.1 up (e.g. 0.5), or none"
        )),
    }
}

/// Style names, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct StyleList(pub Vec<String>);

/// A CPU list.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuList(pub Vec<usize>);

pub(crate) fn parse_styles(s: &str) -> Result<StyleList, String> {
    if s == "all" {
        return Ok(StyleList(
            servers::Style::ALL
                .iter()
                .map(|st| st.name().to_string())
                .collect(),
        ));
    }
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let variant = crate::compare::variant::Variant::parse(name)?;
        if !out.contains(&variant.name) {
            out.push(variant.name);
        }
    }
    if out.is_empty() {
        return Err("no style given".into());
    }
    Ok(StyleList(out))
}

pub(crate) fn parse_cpu_list(s: &str) -> Result<CpuList, String> {
    crate::compare::parse_cpus(s).map(CpuList)
}

/// Parsed source addresses.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceIps(pub Vec<IpAddr>);

pub(crate) fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("cannot resolve {s:?} (want HOST:PORT): {e}"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (want e.g. 10s, 500ms, 1m)"))
}

/// A measured window: a duration above zero.
pub(crate) fn parse_window(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!(
            "{s:?} is no window to measure in (want e.g. 1s, 500ms)"
        )),
        d => Ok(d),
    }
}

pub(crate) fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("{s:?} is not a positive rate per second")),
    }
}

pub(crate) fn parse_source_ips(s: &str) -> Result<SourceIps, String> {
    let mut ips = Vec::new();
    for part in s.split(',') {
        if let Some((a, b)) = part.split_once('-') {
            let a: std::net::Ipv4Addr = a.trim().parse().map_err(|e| format!("{a:?}: {e}"))?;
            let b: std::net::Ipv4Addr = b.trim().parse().map_err(|e| format!("{b:?}: {e}"))?;
            let (a, b) = (u32::from(a), u32::from(b));
            if b < a || b - a > 65_535 {
                return Err(format!(
                    "{part:?} is not an ascending range of at most 65536 addresses"
                ));
            }
            ips.extend((a..=b).map(|ip| IpAddr::from(std::net::Ipv4Addr::from(ip))));
        } else {
            ips.push(part.trim().parse().map_err(|e| format!("{part:?}: {e}"))?);
        }
    }
    Ok(SourceIps(ips))
}
