//! A record-aware mutator for the byte form (codec.rs), libFuzzer's custom mutator.
//!
//! libFuzzer's own mutations insert and erase bytes: one inserted byte shifts every later
//! 5-byte record, so a program's whole suffix changes (issue 17 measured ~10 of 24 steps
//! changed by one insertion; a substitution changes one). A race needs its prefix kept while
//! one or two lines are added, removed or changed after it — the suffix a kernel engineer
//! would try next. These mutations work on whole records: append, insert, erase, duplicate,
//! swap, truncate, and change one field (the operation nibble, the CPU nibble, the address,
//! the value, the `until` byte among the yield points the line reaches). A share of the calls
//! is left to libFuzzer's own mutations (`None`), which keep its dictionary and comparison
//! feedback; `pyvmfuzz bench --ttf K --configs semantic,semantic@bytes` measures it against
//! libFuzzer's byte mutations alone.
//!
//! Syntax only: record boundaries come from the escape bytes (codec.rs: a value or pid byte
//! 0xff is followed by a u32), exactly as the decoder consumes them; what a record *means*
//! is decided by the decoder against the machine state, as for any byte string.

use crate::codec::{RECORD, UNTIL};
use crate::program::NPAGES;

/// SplitMix64: small, and the same sequence for the same libFuzzer seed (determinism); the
/// flag: new lines uniform instead of biased (`random_record`), for `bench --finish`.
struct Rng(u64, bool);

/// One SplitMix64 step of `state` (also PCT's generator, pct.rs).
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    fn next(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// The header's length (2 bytes, fewer in a shorter input) and each record's byte range
/// `(start, end)`, escapes included, as `codec::Decoder` consumes them. A short last record
/// ends at the input's end.
pub fn records(data: &[u8]) -> (usize, Vec<(usize, usize)>) {
    let head = data.len().min(2);
    let mut out = Vec::with_capacity(data.len() / RECORD + 1);
    let mut pos = head;
    while pos < data.len() {
        let start = pos;
        let at = |i: usize| data.get(start + i).copied().unwrap_or(0);
        pos += RECORD + if at(2) == 0xff { 4 } else { 0 } + if at(3) == 0xff { 4 } else { 0 };
        out.push((start, pos.min(data.len())));
    }
    (head, out)
}

/// A new line, no escape following. Biased towards what a race is made of (measured with
/// the finishing rate below): half the lines are a load or a store (a race is seen by an
/// access on another CPU); the address byte is >= 0x80 more often than not (codec.rs: the
/// address of an op in flight on another CPU; for a switch, a thread of a process running
/// elsewhere), else an address some line of the program already uses (`used`: a race is two
/// CPUs on one address — a COW store and a load of the page another CPU cached; syzkaller
/// reuses resources the same way), else any; `until` is absent in most lines. The rest is
/// uniform: any operation, any CPU.
fn random_record(r: &mut Rng, used: &[u8]) -> [u8; RECORD] {
    if r.1 {
        return [r.byte(), r.byte(), r.byte() % 0xff, r.byte() % 0xff, r.byte()];
    }
    let mut k = r.byte();
    if r.below(2) == 0 {
        k = (k & 0xf0) | [1, 2][r.below(2)]; // a load or a store (codec.rs's kind table)
    }
    let pw = match r.below(20) {
        0..=11 => 0x80 | r.byte(),
        12..=16 if !used.is_empty() => used[r.below(used.len())],
        _ => r.byte(),
    };
    [k, pw, r.byte() % 0xff, r.byte() % 0xff, until_byte(r)]
}

/// The addresses the records use, as plain address bytes (codec.rs: page `(pw >> 2) % NPAGES`,
/// word `pw & 3`; a byte >= 0x80 is read as that plain address, its in-flight meaning depends
/// on the moment). Switches, forks, spawns and the rest name no address.
fn used_addresses(data: &[u8], recs: &[(usize, usize)]) -> Vec<u8> {
    const ADDRESSED: [u8; 10] = [1, 2, 6, 7, 8, 9, 10, 11, 12, 15]; // codec.rs KIND_TABLE: load .. mprotect rw, load
    recs.iter()
        .filter(|&&(s, e)| e > s + 1 && ADDRESSED.contains(&(data[s] & 15)))
        .map(|&(s, _)| ((data[s + 1] >> 2) % NPAGES as u8) << 2 | data[s + 1] & 3)
        .collect()
}

/// No `until` (60%), a point the line reaches (30%), or one it declares (codec.rs's ranges).
fn until_byte(r: &mut Rng) -> u8 {
    match r.below(10) {
        0..=5 => r.byte() % 0xa0,
        6..=8 => 0xa0 + r.below(64) as u8,
        _ => 0xe0 + r.below(32) as u8,
    }
}

/// One record-aware mutation of `data` within `max_size` bytes, or `None`: leave this call
/// to libFuzzer's own mutations (about a third of the calls, and whenever the chosen
/// mutation cannot apply). `seed` is libFuzzer's per-call seed.
pub fn mutate(data: &[u8], max_size: usize, seed: u32) -> Option<Vec<u8>> {
    mutate_with(data, max_size, seed, false)
}

/// `mutate`, with new lines drawn uniformly (`uniform`) instead of biased towards races: the
/// comparison `pyvmfuzz bench --finish` measures.
pub fn mutate_with(data: &[u8], max_size: usize, seed: u32, uniform: bool) -> Option<Vec<u8>> {
    let mut r = Rng(seed as u64 ^ 0x5851_F42D_4C95_7F2D, uniform);
    if r.below(3) == 0 || max_size < 2 + RECORD {
        return None;
    }
    let orig = data;
    // A short last record reads as zero-padded (codec.rs): pad it, so a line appended after it
    // does not complete it with its own bytes.
    let padded;
    let data = match full_len(data) {
        n if n > data.len() => {
            padded = [data, &vec![0u8; n - data.len()][..]].concat();
            &padded[..]
        }
        _ => data,
    };
    let (head, recs) = records(data);
    let p = Parsed { data, head, recs };
    let mut out: Vec<u8> = Vec::with_capacity(max_size.min(data.len() + 4 * RECORD));
    edit(&mut r, &p, &mut out)?;
    if out.len() > max_size {
        // whole records only
        let (_, recs) = records(&out);
        let end = recs.iter().map(|&(_, e)| e).take_while(|&e| e <= max_size).last().unwrap_or(2.min(max_size));
        out.truncate(end);
    }
    if out == orig {
        return None;
    }
    Some(out)
}

/// An input split into its header and whole records.
struct Parsed<'a> {
    data: &'a [u8],
    head: usize,
    recs: Vec<(usize, usize)>,
}

impl Parsed<'_> {
    fn rec(&self, i: usize) -> &[u8] {
        &self.data[self.recs[i].0..self.recs[i].1]
    }

    /// The header first: a missing header byte takes the default, so write both.
    fn header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.data[..self.head]);
        while out.len() < 2 {
            out.push(0);
        }
    }

    /// Everything after the header.
    fn body(&self) -> &[u8] {
        &self.data[self.head.max(2).min(self.data.len())..]
    }
}

/// The mutation drawn (a roll of 100): new lines, the hardware byte, or an edit of the lines.
/// None: it does not apply to this input.
fn edit(r: &mut Rng, p: &Parsed, out: &mut Vec<u8>) -> Option<()> {
    let n = p.recs.len();
    let used = || used_addresses(p.data, &p.recs); // only where a new line is made
    let roll = r.below(100);
    // lines with an `until` (where an op may be stopped in flight), only when that mutation
    // is drawn; every record is whole here (the last one padded above)
    let paused: Vec<usize> =
        if (25..=34).contains(&roll) { (0..n).filter(|&i| p.data[p.recs[i].0 + 4] >= UNTIL).collect() } else { Vec::new() };
    match roll {
        // one or two lines right after a line with an `until` (the rest kept, or cut): a race
        // goes on where an op stopped, and lines after the stop may occupy the CPUs it needs
        // (measured on a cow-make-before-break corpus: from an input whose store pauses at
        // `ipi_wait`, cutting after it finishes the witness 20 times as often as appending)
        25..=34 if !paused.is_empty() => {
            let at = paused[r.below(paused.len())] + 1;
            let keep_rest = r.below(2) == 0;
            let used = used();
            p.header(out);
            (0..at).for_each(|i| out.extend_from_slice(p.rec(i)));
            for _ in 0..1 + r.below(2) {
                out.extend_from_slice(&random_record(r, &used));
            }
            if keep_rest {
                (at..n).for_each(|i| out.extend_from_slice(p.rec(i)));
            }
        }
        // append one or two lines: finish a prefix that set a race up
        0..=34 => {
            let used = used();
            p.header(out);
            out.extend_from_slice(p.body());
            for _ in 0..1 + r.below(2) {
                out.extend_from_slice(&random_record(r, &used));
            }
        }
        // insert a line
        35..=46 => {
            let at = r.below(n + 1);
            let used = used();
            p.header(out);
            for i in 0..n {
                if i == at {
                    out.extend_from_slice(&random_record(r, &used));
                }
                out.extend_from_slice(p.rec(i));
            }
            if at == n {
                out.extend_from_slice(&random_record(r, &used));
            }
        }
        // erase, copy, swap, cut (where the input has lines enough), else a field
        47..=71 if reorder(r, p, roll, out) => {}
        // the hardware byte: CPUs and TLB mode
        72..=74 => {
            p.header(out);
            out[0] = r.byte();
            out.extend_from_slice(p.body());
        }
        _ if n > 0 => change_field(r, p, out)?,
        _ => return None,
    }
    Some(())
}

/// Erase a line, copy one elsewhere, swap two, or cut after one (by `roll`); false when the
/// input has too few lines for it.
fn reorder(r: &mut Rng, p: &Parsed, roll: usize, out: &mut Vec<u8>) -> bool {
    let n = p.recs.len();
    match roll {
        47..=54 if n > 0 => {
            let gone = r.below(n);
            p.header(out);
            (0..n).filter(|&i| i != gone).for_each(|i| out.extend_from_slice(p.rec(i)));
        }
        // a second store, the same load again later
        55..=62 if n > 0 => {
            let (from, at) = (r.below(n), r.below(n + 1));
            p.header(out);
            for i in 0..=n {
                if i == at {
                    out.extend_from_slice(p.rec(from));
                }
                if i < n {
                    out.extend_from_slice(p.rec(i));
                }
            }
        }
        63..=67 if n > 1 => {
            let a = r.below(n);
            let b = (a + 1 + r.below(n - 1)) % n;
            p.header(out);
            for i in 0..n {
                out.extend_from_slice(p.rec(if i == a { b } else if i == b { a } else { i }));
            }
        }
        68..=71 if n > 1 => {
            p.header(out);
            let keep = 1 + r.below(n - 1);
            (0..keep).for_each(|i| out.extend_from_slice(p.rec(i)));
        }
        _ => return false,
    }
    true
}

/// Change one field of one line: the operation, the CPU, the address, value or pid byte, or
/// the `until` byte. None where the field is an escape (its u32 follows).
fn change_field(r: &mut Rng, p: &Parsed, out: &mut Vec<u8>) -> Option<()> {
    let i = r.below(p.recs.len());
    p.header(out);
    let (s, e) = p.recs[i];
    out.extend_from_slice(&p.data[p.head.max(2).min(s)..s]);
    let mut line = p.data[s..e].to_vec();
    line.resize(line.len().max(RECORD), 0);
    let f = match r.below(6) {
        0 => {
            line[0] = (line[0] & 0xf0) | r.byte() & 15; // the operation
            None
        }
        1 => {
            line[0] = (line[0] & 15) | r.byte() & 0xf0; // the CPU
            None
        }
        2 => Some(1),
        3 => Some(2),
        4 => Some(3),
        _ => {
            line[4] = until_byte(r);
            None
        }
    };
    if let Some(f) = f {
        // an escape stays an escape (its u32 follows); a plain byte stays plain
        if line[f] != 0xff {
            line[f] = if f == 1 { r.byte() } else { r.byte() % 0xff };
        } else {
            return None;
        }
    }
    out.extend_from_slice(&line);
    out.extend_from_slice(&p.data[e..]);
    Some(())
}

/// The length `data` has once its last record is complete (escapes included).
fn full_len(data: &[u8]) -> usize {
    let (_, recs) = records(data);
    recs.last().map_or(data.len(), |&(s, _)| {
        let at = |i: usize| data.get(s + i).copied().unwrap_or(0);
        s + RECORD + if at(2) == 0xff { 4 } else { 0 } + if at(3) == 0xff { 4 } else { 0 }
    })
}

/// Record-aware crossover: the first records of `a` then records of `b` from some record
/// on (the header is `a`'s), within `max_size`. libFuzzer's byte crossover splices at any
/// offset, which misaligns the second part's records.
pub fn crossover(a: &[u8], b: &[u8], max_size: usize, seed: u32) -> Vec<u8> {
    let mut r = Rng(seed as u64 ^ 0x2545_F491_4F6C_DD1D, false);
    let pad = |x: &[u8]| -> Vec<u8> { [x, &vec![0u8; full_len(x) - x.len()][..]].concat() };
    let (a, b) = (&pad(a)[..], &pad(b)[..]);
    let (ha, ra) = records(a);
    let (_, rb) = records(b);
    let mut out = a[..ha].to_vec();
    while out.len() < 2 {
        out.push(0);
    }
    let keep = r.below(ra.len() + 1);
    let from = r.below(rb.len() + 1);
    for &(s, e) in &ra[..keep] {
        out.extend_from_slice(&a[s..e]);
    }
    for &(s, e) in &rb[from..] {
        if out.len() + (e - s) > max_size {
            break;
        }
        out.extend_from_slice(&b[s..e]);
    }
    out.truncate(max_size.max(2));
    out
}

// libFuzzer's entry points, in native code: a Python custom mutator (atheris) costs a Python
// call per execution, which halved exec/s (measured, 140k -> 72k/s on one core). libFuzzer
// binds these weak symbols when it is loaded; the harness loads this library globally first
// (campaign/harness.py), and only then are they used.

extern "C" {
    fn dlsym(handle: *mut std::ffi::c_void, symbol: *const std::ffi::c_char) -> *mut std::ffi::c_void;
}

type LibFuzzerMutate = extern "C" fn(*mut u8, usize, usize) -> usize;

static LIBFUZZER_MUTATE: std::sync::atomic::AtomicPtr<std::ffi::c_void> = std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// libFuzzer's own mutation (`LLVMFuzzerMutate`), or `size` (unchanged) where there is none.
fn libfuzzer_mutate(data: *mut u8, size: usize, max_size: usize) -> usize {
    use std::sync::atomic::Ordering;
    let mut f = LIBFUZZER_MUTATE.load(Ordering::Relaxed);
    if f.is_null() {
        // SAFETY: dlsym with RTLD_DEFAULT (null) and a NUL-terminated name.
        f = unsafe { dlsym(std::ptr::null_mut(), c"LLVMFuzzerMutate".as_ptr()) };
        if f.is_null() {
            return size;
        }
        LIBFUZZER_MUTATE.store(f, Ordering::Relaxed);
    }
    // SAFETY: LLVMFuzzerMutate has this signature; `data` holds `max_size` bytes (libFuzzer's
    // contract for the custom mutator's buffer).
    let f: LibFuzzerMutate = unsafe { std::mem::transmute(f) };
    f(data, size, max_size)
}

/// libFuzzer's custom mutator: `mutate`, or libFuzzer's own when it returns `None` (or, it
/// cannot, panics: no unwinding crosses into libFuzzer).
///
/// # Safety
/// libFuzzer's contract: `data` points to `max_size` writable bytes, the first `size` the input.
#[no_mangle]
pub unsafe extern "C" fn LLVMFuzzerCustomMutator(data: *mut u8, size: usize, max_size: usize, seed: u32) -> usize {
    let input = std::slice::from_raw_parts(data, size);
    match std::panic::catch_unwind(|| mutate(input, max_size, seed)) {
        Ok(Some(out)) if out.len() <= max_size => {
            std::ptr::copy_nonoverlapping(out.as_ptr(), data, out.len());
            out.len()
        }
        _ => libfuzzer_mutate(data, size, max_size),
    }
}

/// libFuzzer's custom crossover: `crossover`.
///
/// # Safety
/// libFuzzer's contract: the inputs hold `size1`/`size2` bytes, `out` `max_out_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn LLVMFuzzerCustomCrossOver(
    data1: *const u8,
    size1: usize,
    data2: *const u8,
    size2: usize,
    out: *mut u8,
    max_out_size: usize,
    seed: u32,
) -> usize {
    let (a, b) = (std::slice::from_raw_parts(data1, size1), std::slice::from_raw_parts(data2, size2));
    match std::panic::catch_unwind(|| crossover(a, b, max_out_size, seed)) {
        Ok(v) if v.len() <= max_out_size => {
            std::ptr::copy_nonoverlapping(v.as_ptr(), out, v.len());
            v.len()
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_follow_escapes() {
        // header, a plain record, a record with a value escape (4 more bytes), a short tail
        let data = [0u8, 0, 1, 2, 3, 4, 5, 1, 2, 0xff, 4, 5, 9, 9, 9, 9, 7, 7];
        let (h, r) = records(&data);
        assert_eq!(h, 2);
        assert_eq!(r, vec![(2, 7), (7, 16), (16, 18)]);
    }

    #[test]
    fn mutations_keep_other_records_whole() {
        // every record distinct; after any mutation but a header change, each record of the
        // output that is not new is one of the input's, byte for byte
        let mut data = vec![2u8, 3];
        for i in 0..8u8 {
            data.extend_from_slice(&[i, 10 + i, 20 + i, 30 + i, 40 + i]);
        }
        let mut changed = 0;
        for seed in 0..2000 {
            if let Some(out) = mutate(&data, 200, seed) {
                changed += 1;
                assert!(out.len() <= 200 && out.len() >= 2);
                let (_, recs) = records(&out);
                let new = recs.iter().filter(|&&(s, e)| !data[2..].chunks(5).any(|c| c == &out[s..e])).count();
                assert!(new <= 2, "seed {seed}: {new} records not the input's: {out:?}");
            }
        }
        assert!(changed > 1000, "{changed}");
    }

    #[test]
    fn crossover_splices_whole_records() {
        let a = [1u8, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2];
        let b = [0u8, 0, 7, 7, 0xff, 7, 7, 1, 2, 3, 4, 8, 8, 8, 8, 8];
        for seed in 0..200 {
            let out = crossover(&a, &b, 64, seed);
            let (_, recs) = records(&out);
            for (s, e) in recs {
                let r = &out[s..e];
                assert!(a[2..].chunks(5).any(|c| c == r) || r == &b[2..11] || r == &b[11..16], "{out:?}");
            }
        }
    }
}
