//! Constraint parsing time against input length: prints ns per byte for
//! constraints of 16 to 256 bytes (`MAX_VERSION_LEN`) in several shapes,
//! and the cost of refusing a 100 KB string. Prints, never asserts.
//!
//! `cargo bench --bench constraint`

use std::hint::black_box;
use std::time::{Duration, Instant};

use function_ecr_packages::version::{Constraint, MAX_VERSION_LEN, VersionSpec};

/// `unit` repeated (with `sep` between) to exactly `len` bytes, padded with
/// trailing spaces (which Masterminds ignores).
fn shape(unit: &str, sep: &str, len: usize) -> String {
    let mut s = String::from(unit);
    while s.len() + sep.len() + unit.len() <= len {
        s.push_str(sep);
        s.push_str(unit);
    }
    while s.len() < len {
        s.push(' ');
    }
    s
}

/// Makes a constraint of a given length.
type Shape = Box<dyn Fn(usize) -> String>;

/// Mean time of one call of `f`, over at least 50 ms.
fn time(mut f: impl FnMut()) -> Duration {
    for _ in 0..100 {
        f();
    }
    let mut runs = 0u32;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(50) {
        for _ in 0..100 {
            f();
        }
        runs += 100;
    }
    started.elapsed() / runs
}

fn main() {
    let shapes: [(&str, Shape); 6] = [
        ("and-list", Box::new(|n| shape(">=1.2.3", ", ", n))),
        ("or-list", Box::new(|n| shape("^1.2", " || ", n))),
        ("hyphen ranges", Box::new(|n| shape("1 - 2", ", ", n))),
        ("one long token", Box::new(|n| "1".repeat(n))),
        (
            "long prerelease",
            Box::new(|n| {
                format!("1.2.3-{}", "a.".repeat(n))
                    .chars()
                    .take(n)
                    .collect()
            }),
        ),
        ("spaced dashes", Box::new(|n| shape("a", " - ", n))),
    ];
    let lengths = [16, 32, 64, 128, MAX_VERSION_LEN];
    print!("{:<16}", "ns/byte");
    for len in lengths {
        print!("{len:>9}");
    }
    println!("   (parse ok?)");
    for (name, make) in &shapes {
        print!("{name:<16}");
        let mut oks = Vec::new();
        for len in lengths {
            let text = make(len);
            assert!(text.len() <= MAX_VERSION_LEN);
            oks.push(Constraint::parse(&text).is_ok());
            let t = time(|| {
                let _ = black_box(Constraint::parse(black_box(&text)));
            });
            print!("{:>9.1}", t.as_nanos() as f64 / len as f64);
        }
        let oks: Vec<&str> = oks.iter().map(|&ok| if ok { "y" } else { "n" }).collect();
        println!("   {}", oks.join(""));
    }
    for (name, text) in [
        ("100 KB token", "1".repeat(100 * 1024)),
        ("100 KB ranges", shape("1 - 2", ", ", 100 * 1024)),
    ] {
        let t = time(|| {
            let _ = black_box(VersionSpec::parse(black_box(&text)));
        });
        let refused = VersionSpec::parse(&text).is_err();
        println!(
            "{name:<16} refused={refused} in {} ns ({:.4} ns/byte): the length is checked first",
            t.as_nanos(),
            t.as_nanos() as f64 / text.len() as f64
        );
    }
}
