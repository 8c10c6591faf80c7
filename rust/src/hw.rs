//! The hardware model's knobs: how many CPUs, how big each TLB is, and whether TLB entries
//! survive an address-space switch (`tagged`, like PCID) or not (`pc64`, a %cr3 reload).

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TlbMode {
    /// Switching to another address space flushes the CPU's TLB.
    Pc64,
    /// Entries are tagged by address space and survive switches.
    Tagged,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Hw {
    pub cpus: u8,
    pub tlb: u8,
    pub mode: TlbMode,
}

pub const MAX_CPUS: u8 = 8;
pub const MAX_TLB: u8 = 64;

impl Default for Hw {
    fn default() -> Self {
        Hw { cpus: 2, tlb: 8, mode: TlbMode::Pc64 }
    }
}

impl fmt::Display for Hw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            TlbMode::Pc64 => "pc64",
            TlbMode::Tagged => "tagged",
        };
        write!(f, "hw cpus={} tlb={} mode={}", self.cpus, self.tlb, mode)
    }
}

/// A partial hardware description: a program header or a `--hw` flag may name any subset.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct HwSpec {
    pub cpus: Option<u8>,
    pub tlb: Option<u8>,
    pub mode: Option<TlbMode>,
}

impl HwSpec {
    /// `over` wins key by key.
    pub fn overlay(self, over: HwSpec) -> HwSpec {
        HwSpec {
            cpus: over.cpus.or(self.cpus),
            tlb: over.tlb.or(self.tlb),
            mode: over.mode.or(self.mode),
        }
    }

    pub fn resolve(self) -> Hw {
        let d = Hw::default();
        Hw {
            cpus: self.cpus.unwrap_or(d.cpus),
            tlb: self.tlb.unwrap_or(d.tlb),
            mode: self.mode.unwrap_or(d.mode),
        }
    }

    /// Parses `cpus=3 tlb=4 mode=tagged`; keys may be separated by spaces or commas.
    pub fn parse(s: &str) -> Result<HwSpec, String> {
        let mut spec = HwSpec::default();
        let mut seen: Vec<&str> = Vec::new();
        for item in s.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("bad hw item '{item}' (expected key=value)"))?;
            // `cpus=2 cpus=3` named two machines (the last one won, silently)
            if seen.contains(&k) {
                return Err(format!("hw key '{k}' given twice"));
            }
            seen.push(k);
            match k {
                "cpus" => {
                    let n: u8 = v.parse().map_err(|_| format!("bad cpus '{v}'"))?;
                    if !(1..=MAX_CPUS).contains(&n) {
                        return Err(format!("cpus={v} out of range 1..{MAX_CPUS}"));
                    }
                    spec.cpus = Some(n);
                }
                "tlb" => {
                    let n: u8 = v.parse().map_err(|_| format!("bad tlb '{v}'"))?;
                    if !(1..=MAX_TLB).contains(&n) {
                        return Err(format!("tlb={v} out of range 1..{MAX_TLB}"));
                    }
                    spec.tlb = Some(n);
                }
                "mode" => {
                    spec.mode = Some(match v {
                        "pc64" => TlbMode::Pc64,
                        "tagged" => TlbMode::Tagged,
                        _ => return Err(format!("bad mode '{v}' (pc64 or tagged)")),
                    })
                }
                _ => return Err(format!("unknown hw key '{k}' (cpus, tlb, mode)")),
            }
        }
        Ok(spec)
    }
}
