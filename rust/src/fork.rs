//! fork (vmspace_fork): private entries become copy-on-write/needs-copy in parent and child,
//! the parent's PTEs for them are write-protected (with shootdown); shared entries are shared;
//! the child's pmap starts empty and its one thread T1 is runnable. It runs as phases of a
//! kernel operation (`inflight.rs`): under the map lock it write-protects and marks the
//! entries, waits for its IPIs (`ipi_wait`), then builds the child.
