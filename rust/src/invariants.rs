//! The Rust core's internal invariants, checked after every operation (SPEC §4):
//! `tlb-incoherent`, then `use-after-free`, then `file-corruption`.

use crate::judge::Kind;
use crate::swtch::MID_SWITCH;
use crate::machine::{Machine, IDLE_SPACE};
use crate::program::{text_word, PAGE_NAMES};

impl Machine {
    /// Checks only what the step could have broken (see `Dirty`): coherence needs a PTE or
    /// address-space change or a TLB fill, use-after-free a PTE change or a freed frame, file corruption a
    /// write to a file frame. `full` checks everything (tests compare the two).
    #[inline]
    pub fn check_invariants(&mut self) -> Option<(Kind, String)> {
        // Most plain lines change nothing checked (a switch within one space, a TLB hit
        // load): decided here, inline, without the call (it was a tenth of the plain path).
        let d = &self.scratch.dirty;
        if !(d.pte || d.space || d.fill || d.file || d.lost.is_some()) && d.freed_seen == self.phys.freed_count {
            return None;
        }
        self.check_invariants_dirty()
    }

    #[inline(never)]
    fn check_invariants_dirty(&mut self) -> Option<(Kind, String)> {
        let d = std::mem::take(&mut self.scratch.dirty);
        let freed = self.phys.freed_count;
        self.scratch.dirty.freed_seen = freed;
        if d.pte || d.space || d.fill {
            if let Some(v) = self.check_coherence() {
                return Some(v);
            }
        }
        if freed > 0 && (d.pte || freed != d.freed_seen) {
            if let Some(v) = self.check_use_after_free() {
                return Some(v);
            }
        }
        if d.file {
            if let Some(v) = self.check_file() {
                return Some(v);
            }
        }
        d.lost.map(|why| (Kind::LostData, why))
    }

    pub fn check_invariants_full(&self) -> Option<(Kind, String)> {
        if let Some(v) = self.check_coherence() {
            return Some(v);
        }
        if self.phys.freed_count > 0 {
            if let Some(v) = self.check_use_after_free() {
                return Some(v);
            }
        }
        self.check_file()
    }

    fn check_coherence(&self) -> Option<(Kind, String)> {
        // A CPU running an address space must not cache a translation its PTE does not allow.
        for (c, cpu) in self.cpus.iter().enumerate() {
            // A CPU between the halves of a switch runs no address space (SPEC §3.2).
            if cpu.space == IDLE_SPACE || cpu.space == MID_SWITCH {
                continue;
            }
            let pmap = &self.proc(cpu.space).pmap;
            for te in cpu.tlb.entries.iter().filter(|e| e.asid == cpu.space) {
                // Tolerated exactly while an invalidation of that space and page is pending
                // for this CPU (SPEC §4.1).
                if !self.invals.is_empty() && self.inval_pending(c, te.asid, te.va) {
                    continue;
                }
                let pte = pmap.pte[te.va as usize];
                let page = PAGE_NAMES[te.va as usize];
                let bad = if !pte.present() {
                    Some("the PTE is absent".to_string())
                } else if pte.frame != te.frame {
                    Some(format!("the PTE maps frame {}", pte.frame))
                } else if te.writable && !pte.writable {
                    Some("the PTE is read-only".to_string())
                } else {
                    None
                };
                if let Some(why) = bad {
                    return Some((
                        Kind::TlbIncoherent,
                        format!(
                            "cpu{c} TLB caches P{} {page} -> frame {}{} but {why}",
                            cpu.space,
                            te.frame,
                            if te.writable { " writable" } else { "" }
                        ),
                    ));
                }
            }
        }
        None
    }

    fn check_use_after_free(&self) -> Option<(Kind, String)> {
        for p in self.procs.iter().filter(|p| p.alive) {
            for (va, pte) in p.pmap.pte.iter().enumerate() {
                if pte.present() && self.phys.is_freed(pte.frame) {
                    return Some((
                        Kind::UseAfterFree,
                        format!("P{} PTE {} maps freed frame {}", p.pid, PAGE_NAMES[va], pte.frame),
                    ));
                }
            }
        }
        for (c, cpu) in self.cpus.iter().enumerate() {
            // A mid-switch CPU's TLB is not looked at (SPEC §3.2): it is flushed at `enter`
            // or reached by shootdowns.
            if cpu.space == MID_SWITCH {
                continue;
            }
            for te in &cpu.tlb.entries {
                let live = te.asid != IDLE_SPACE && self.proc(te.asid).alive;
                if live && self.phys.is_freed(te.frame) {
                    return Some((
                        Kind::UseAfterFree,
                        format!("cpu{c} TLB caches P{} {} -> freed frame {}", te.asid, PAGE_NAMES[te.va as usize], te.frame),
                    ));
                }
            }
        }
        for s in &self.sleepers {
            if self.phys.is_freed(s.frame) {
                return Some((
                    Kind::UseAfterFree,
                    format!("P{}.T{} sleeps on freed frame {}", s.pid, s.tid, s.frame),
                ));
            }
        }
        None
    }

    fn check_file(&self) -> Option<(Kind, String)> {
        let file = self.obj(self.file_object);
        for p in 0..2u8 {
            let f = file.pages[p as usize];
            if f == crate::phys::NO_FRAME {
                continue; // paged out (clean: the file has it)
            }
            let words = self.phys.words(f);
            for w in 0..4u8 {
                if words[w as usize] != text_word(p, w) {
                    return Some((
                        Kind::FileCorruption,
                        format!("file page text{p} word {w} is {:#x}, not {:#x}", words[w as usize], text_word(p, w)),
                    ));
                }
            }
        }
        None
    }
}
