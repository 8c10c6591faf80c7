//! Profiling aid: the fuzzing hot path on random 32-step programs, with and without the
//! semantic features (`cargo run --release --example soakbench`; PLAIN=1 for plain programs).
use pyvmfuzz_core::{exec, features::Features, hw::HwSpec, kernel, soak::Rng};

fn main() {
    let k = kernel::by_name("fixed").unwrap();
    let hw = HwSpec::parse("mode=pc64").unwrap();
    let mut rng = Rng(1);
    let inputs: Vec<Vec<u8>> = (0..200_000)
        .map(|_| {
            let mut d: Vec<u8> = (0..130).map(|_| rng.next() as u8).collect();
            // PLAIN=1: programs without `until`/`resume`/`ipi` lines (the quiet plain path).
            if std::env::var("PLAIN").is_ok_and(|v| v == "1") {
                pyvmfuzz_core::soak::plain_records(&mut d);
            }
            d
        })
        .collect();
    for round in 0..2 {
        let modes: Vec<bool> = match std::env::var("SEM").as_deref() { Ok("1") => vec![true], Ok("0") => vec![false], _ => vec![false, true] };
        for sem in modes {
            let t = std::time::Instant::now();
            let mut bad = 0;
            for d in &inputs {
                let r = if sem {
                    let mut f = Features::to_counters();
                    exec::fuzz_verdict(d, k, hw, Some(&mut f))
                } else {
                    exec::fuzz_verdict(d, k, hw, None)
                };
                bad += (r.0 != 0) as u32;
            }
            let dt = t.elapsed().as_secs_f64();
            println!("round {round} semantic={sem}: {:.0} programs/s ({bad} violating)", inputs.len() as f64 / dt);
        }
    }
}
