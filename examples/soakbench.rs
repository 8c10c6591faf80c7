fn main() {
    let k = pyvmfuzz_core::kernel::by_name("fixed").unwrap();
    let cfg = pyvmfuzz_core::soak::SoakConfig { programs: 200000, seed: 1, max_steps: 32, max_cpus: 4, max_tlb: 16, mode: pyvmfuzz_core::hw::TlbMode::Pc64 };
    let t = std::time::Instant::now();
    let r = pyvmfuzz_core::soak::soak(&cfg, k);
    println!("{} steps {:?}", r.steps, t.elapsed());
}
